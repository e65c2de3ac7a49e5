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

/** What the server knows about the call a batch arrived in. */
export interface InferContext {
  /** Epoch ms by which the caller wants the answer (the gRPC deadline); undefined when it set none. */
  deadline?: number;
  /** Aborted when the caller cancels the call or its deadline passes. */
  signal?: AbortSignal;
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
  /** `context` lets a backend that waits on something remote stop when the caller has gone. */
  inferBatch(items: readonly BackendItem[], context?: InferContext): Promise<BackendResult[]>;
}
