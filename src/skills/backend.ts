import type { ErrorBody } from '../errors/index.js';
import type { InferItem, SkillOutput } from './contract.js';

export type ModelState = 'UNLOADED' | 'LOADING' | 'READY' | 'FAILED';

/** One item to compute, as a backend sees it: the skill contract's item and its id. */
export interface BackendItem extends InferItem {
  id: string;
}

/** What the server knows about the call a batch arrived in. */
export interface InferContext {
  /** Epoch ms by which the caller wants the answer (the gRPC deadline); undefined when it set none. */
  deadline?: number;
  /** Aborted when the caller cancels the call or its deadline passes. */
  signal?: AbortSignal;
}

export type BackendOutput = SkillOutput;

/** `model` names the model that answered this item (name@version) when it differs from the skill's. */
export type BackendResult = { ok: true; output: BackendOutput; model?: string } | { ok: false; error: ErrorBody };

/** An input or output of a tensor model; -1 marks a size chosen per request (the batch dimension first). */
export interface TensorSpec {
  name: string;
  datatype: string;
  shape: number[];
}

/** One version of a model; DRAINING: retired, finishing the calls it has, then unloading. */
export interface ModelVersionStatus {
  version: string;
  state: ModelState | 'DRAINING';
  /** Size of its file. */
  sizeBytes?: number;
  /** Why it cannot serve (FAILED), naming the file. */
  error?: string;
}

/** One variant of a model (the same model stored in another precision), e.g. `int8`. */
export interface ModelVariantStatus {
  name: string;
  /** What most of its weights are stored in: FP32, FP16, INT8. */
  precision: string;
  /** Newest first. */
  versions: ModelVersionStatus[];
}

/** A model inside a multi-model backend (e.g. an ONNX model repository). */
export interface ModelDescriptor {
  name: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** Largest batch one model run takes; 0: the model does not batch. */
  maxBatchSize: number;
  /** Hints for a dynamic batcher in front of the skill. */
  dynamicBatching?: { maxQueueDelayMs: number; preferredBatchSizes: number[] };
  deterministic: boolean;
  /** Newest first; of the default variant when the model has variants. */
  versions: ModelVersionStatus[];
  /** Precision and size of the newest version of the default variant (or only file). */
  precision?: string;
  sizeBytes?: number;
  /** For a model with variants: the one a request that names none gets (`mlp`), and each (`mlp:int8`). */
  defaultVariant?: string;
  variants?: ModelVariantStatus[];
}

/** What a skill tells the registry about itself. */
export interface SkillDescriptor {
  backend: string;
  /** name@version of the model served. */
  model: string;
  tasks: readonly string[];
  /** Task used when a request names none. */
  defaultTask: string;
  /** Same input, same output: results may be cached and identical requests coalesced. */
  deterministic: boolean;
  /** Multi-model backends: each model, its tensors and versions. A request picks one by `task`. */
  models?: ModelDescriptor[];
  /**
   * How dispatchers may batch this skill's items, from the model's config (Triton's
   * `max_batch_size`, `max_queue_delay`, `preferred_batch_size`). Cluster settings apply on top
   * (src/queue/batch-settings.ts); absent fields take the cluster defaults.
   */
  batching?: { maxBatchSize?: number; maxQueueDelayMs?: number; preferredBatchSizes?: number[] };
}

/**
 * A model server behind the gRPC contract. `inferBatch` keeps item order and reports a
 * bad item in its own result rather than throwing; it throws only when the whole model fails.
 * The skill server runtime decides when to `load` (on the first call) and `unload` (when idle).
 */
export interface SkillBackend {
  describe(): SkillDescriptor;
  /** FAILED tells the runtime the backend cannot serve (health goes NOT_SERVING). */
  state(): ModelState;
  /**
   * Checks at start-up, without keeping anything loaded, that the model can be loaded; throws a
   * message naming what is wrong (a missing file, a bad config). Optional.
   */
  prepare?(): Promise<void>;
  load(): Promise<void>;
  unload(): Promise<void>;
  /** `context` lets a backend that waits on something remote stop when the caller has gone. */
  inferBatch(items: readonly BackendItem[], context?: InferContext): Promise<BackendResult[]>;
  /**
   * One item, its text passed to `onDelta` piece by piece as it is generated; resolves with the
   * whole result. Optional: generative backends only (the server answers the others' streams
   * with their inferBatch result).
   */
  inferStream?(item: BackendItem, context: InferContext, onDelta: (text: string) => void): Promise<BackendResult>;
  /** Re-reads where the models come from (e.g. a repository directory) and applies changes. Optional. */
  refresh?(): Promise<void>;
}
