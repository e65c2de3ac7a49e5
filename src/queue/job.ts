import { UnrecoverableError, type Worker } from 'bullmq';
import { AppError } from '../errors/index.js';
import type { InferItem, SkillAnswer, SkillOutput } from '../skills/contract.js';
export { outputValue } from '../skills/contract.js';

/** What a gateway puts on queue `skill:<name>`. */
export interface InferJobData {
  skill: string;
  requestId: string;
  /** Epoch ms when the gateway enqueued the job. */
  enqueuedAt: number;
  /** Tenant that submitted it: async jobs are only shown to it. */
  tenantId?: string;
  /** Epoch ms after which the answer is useless: the dispatcher drops the job instead of computing it. */
  deadlineAt?: number;
  /** For async jobs: hash of the request, to tell a retried submit from a reused Idempotency-Key. */
  requestHash?: string;
  item: InferItem & {
    /** Generative skills: send the output to the job's token stream as it is produced (src/queue/token-stream.ts). */
    stream?: boolean;
  };
}

export type JobOutput = SkillOutput;

/** What a dispatcher completes the job with: the skill's answer, and how long the job waited. */
export interface InferJobResult extends SkillAnswer {
  timing: SkillAnswer['timing'] & {
    /** From enqueue to a dispatcher sending the job to the skill. */
    queueMs: number;
  };
}

/** Published on the completion channel when a job reaches a final state. */
export type CompletionMessage = { id: string; skill?: string } & (
  { ok: true; result: InferJobResult } | { ok: false; error: unknown }
);

/**
 * BullMQ names a queue's keys `<prefix>:<name>:<suffix>`; ours `<KEY_PREFIX>:{skill:<skill>}:<skill>:…`.
 * The hash tag puts all of one queue's keys in one Redis Cluster slot, which BullMQ's multi-key
 * scripts need; one tag per queue (not one for all) spreads the queues over the cluster's masters.
 */
export function queuePrefix(keyPrefix: string, skill: string): string {
  return `${keyPrefix}:{skill:${skill}}`;
}

/** One channel for the whole cluster: every gateway hears every completion (and so can coalesce). */
export function completionChannel(keyPrefix: string): string {
  return `${keyPrefix}:jobs:done`;
}

/**
 * BullMQ keeps a failed job's reason as a string; ours is the AppError's JSON so the code
 * survives the trip. Unrecoverable: the gateway's deadline, not BullMQ, decides about retries.
 */
export function encodeFailure(err: unknown): UnrecoverableError {
  const appError = err instanceof AppError ? err : new AppError('SKILL_ERROR', undefined, undefined, { cause: err });
  return new UnrecoverableError(JSON.stringify(appError.toJSON()));
}

export function decodeFailure(reason: string | undefined): AppError {
  try {
    return AppError.from(JSON.parse(reason ?? ''));
  } catch {
    return new AppError('SKILL_ERROR');
  }
}

/**
 * Calls `publish` with each final outcome of `worker`'s jobs, as the gateways' waiters expect it
 * on the completion channel (and `counted`, for metrics). A failure that BullMQ will retry is not
 * final and is not announced.
 */
export function announceCompletions(
  worker: Worker<InferJobData, InferJobResult>,
  skill: string,
  publish: (msg: CompletionMessage) => void,
  counted?: (outcome: 'completed' | 'failed') => void,
): void {
  worker.on('completed', (job, result) => {
    counted?.('completed');
    if (job.id) publish({ id: job.id, skill, ok: true, result });
  });
  worker.on('failed', (job, err) => {
    if (!job?.id) return;
    const final = job.finishedOn !== undefined || job.attemptsMade >= (job.opts.attempts ?? 1);
    if (!final) return;
    counted?.('failed');
    publish({ id: job.id, skill, ok: false, error: parseFailure(err.message) });
  });
}

/** A failure message as encodeFailure wrote it (an AppError's JSON), or SKILL_ERROR if it is not one. */
function parseFailure(message: string): unknown {
  try {
    return JSON.parse(message);
  } catch {
    return new AppError('SKILL_ERROR').toJSON();
  }
}
