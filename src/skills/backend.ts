import type { ErrorBody } from '../errors/index.js';
import type { WireTensor } from './proto.js';

export type ModelState = 'UNLOADED' | 'LOADING' | 'READY' | 'FAILED';

/** One item to compute, as a backend sees it. */
export interface BackendItem {
  id: string;
  text?: string;
  tensors?: WireTensor[];
  task: string;
  maxTokens: number;
  temperature?: number;
  modelVersion: string;
}

export type BackendOutput = { text: string } | { json: unknown } | { tensors: WireTensor[] };

export type BackendResult = { ok: true; output: BackendOutput } | { ok: false; error: ErrorBody };

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
 */
export interface SkillBackend {
  describe(): SkillDescriptor;
  state(): ModelState;
  load(): Promise<void>;
  unload(): Promise<void>;
  inferBatch(items: readonly BackendItem[]): Promise<BackendResult[]>;
}
