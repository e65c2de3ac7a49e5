import { type Job, type Processor, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  announceCompletions,
  type CompletionMessage,
  encodeFailure,
  type InferJobData,
  type InferJobResult,
  queuePrefix,
} from '../../src/queue/job.js';

/** What a no-op skill answers: small, fixed, and recognisable in an assert. */
export function noopResult(tag = 'noop'): InferJobResult {
  return {
    output: { text: tag },
    model: 'noop',
    timing: { queueMs: 0, computeMs: 0, skillMs: 0, batchSize: 1 },
  };
}

/** The channel a per-request subscriber listens on (a variant the project did not choose). */
export function perJobChannel(keyPrefix: string, id: string): string {
  return `${keyPrefix}:jobs:done:${id}`;
}

export interface CompletionWorkerOptions {
  /** A connection BullMQ may block on (maxRetriesPerRequest: null). */
  connection: Redis;
  /** Publishes the completion messages (a command connection, as the dispatcher's `redis`). */
  publisher: Redis;
  keyPrefix: string;
  /** Queue name: the skill. */
  skill: string;
  /** Where a job's completion is published; undefined publishes nothing (a lost message). */
  channel?: (jobId: string) => string;
  concurrency?: number;
  /** The job's work; defaults to answering {@link noopResult} at once. */
  processor?: Processor<InferJobData, InferJobResult>;
  autorun?: boolean;
}

/**
 * A BullMQ worker that finishes jobs and announces them the way the dispatcher does (both use
 * `announceCompletions` from src/queue/job.ts). A processor's error goes
 * through `encodeFailure`, as the dispatcher's does, so the job's failedReason is the AppError's JSON.
 */
export function startCompletionWorker(opts: CompletionWorkerOptions): Worker<InferJobData, InferJobResult> {
  const { publisher, channel, skill } = opts;
  const work = opts.processor ?? (async () => noopResult());
  const processor = async (job: Job<InferJobData, InferJobResult>) => {
    try {
      return await work(job);
    } catch (err) {
      throw encodeFailure(err);
    }
  };
  const worker = new Worker<InferJobData, InferJobResult>(skill, processor, {
    connection: opts.connection,
    prefix: queuePrefix(opts.keyPrefix, skill),
    concurrency: opts.concurrency ?? 1,
    autorun: opts.autorun ?? true,
  });
  announceCompletions(worker, skill, (msg: CompletionMessage) => {
    if (!channel) return;
    publisher.publish(channel(msg.id), JSON.stringify(msg)).catch(() => undefined);
  });
  worker.on('error', () => undefined);
  return worker;
}
