import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { AppError } from '../errors/index.js';
import type { Logger } from '../observability/logger.js';
import {
  type CompletionMessage,
  completionChannel,
  decodeFailure,
  type InferJobData,
  type InferJobResult,
  queuePrefix,
} from './job.js';

export interface ProducerDeps {
  /** Commands: enqueue, job lookups. */
  redis: Redis;
  /** A dedicated connection in subscriber mode. */
  subscriber: Redis;
  keyPrefix: string;
  /** Finished jobs stay this long, so a waiter that missed the message can still read them. */
  retentionS: number;
  logger: Logger;
}

interface Waiter {
  resolve: (r: InferJobResult) => void;
  reject: (e: AppError) => void;
}

/**
 * Enqueues jobs and waits for their results. Completions arrive on one pub/sub channel that
 * the gateway subscribed to at start; pub/sub can lose a message (e.g. across a reconnect),
 * so a waiter that times out reads the job's final state once before it gives up.
 */
export class JobProducer {
  private readonly queues = new Map<string, Queue>();
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly channel: string;

  constructor(private readonly deps: ProducerDeps) {
    this.channel = completionChannel(deps.keyPrefix);
  }

  async start(): Promise<void> {
    this.deps.subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.onCompletion(message);
    });
    await this.deps.subscriber.subscribe(this.channel);
  }

  /** Enqueues one inference and resolves with its result, or rejects within `timeoutMs`. */
  async run(data: InferJobData, timeoutMs: number): Promise<InferJobResult> {
    const id = randomUUID();
    const done = this.wait(data.skill, id, timeoutMs);
    try {
      await this.queue(data.skill).add('infer', data, {
        jobId: id,
        attempts: 1,
        removeOnComplete: { age: this.deps.retentionS },
        removeOnFail: { age: this.deps.retentionS },
      });
    } catch (err) {
      this.settle(id, (w) => w.reject(new AppError('QUEUE_UNAVAILABLE', undefined, undefined, { cause: err })));
    }
    return done;
  }

  /** Waiters currently open; exported as a gauge. */
  pending(): number {
    return this.waiters.size;
  }

  async close(): Promise<void> {
    if (this.deps.subscriber.status === 'ready')
      await this.deps.subscriber.unsubscribe(this.channel).catch(() => undefined);
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    for (const id of [...this.waiters.keys()]) this.settle(id, (w) => w.reject(new AppError('SHUTTING_DOWN')));
  }

  private queue(skill: string): Queue {
    let queue = this.queues.get(skill);
    if (!queue) {
      queue = new Queue(skill, { connection: this.deps.redis, prefix: queuePrefix(this.deps.keyPrefix) });
      queue.on('error', (err) => this.deps.logger.warn({ err, skill }, 'queue error'));
      this.queues.set(skill, queue);
    }
    return queue;
  }

  private wait(skill: string, id: string, timeoutMs: number): Promise<InferJobResult> {
    return new Promise<InferJobResult>((resolve, reject) => {
      const timer = setTimeout(() => void this.onTimeout(skill, id), timeoutMs);
      const clear =
        <T>(fn: (v: T) => void) =>
        (v: T) => {
          clearTimeout(timer);
          fn(v);
        };
      const list = this.waiters.get(id) ?? [];
      list.push({ resolve: clear(resolve), reject: clear(reject) });
      this.waiters.set(id, list);
    });
  }

  private settle(id: string, fn: (w: Waiter) => void): void {
    const list = this.waiters.get(id);
    if (!list) return;
    this.waiters.delete(id);
    for (const w of list) fn(w);
  }

  private onCompletion(message: string): void {
    let msg: CompletionMessage;
    try {
      msg = JSON.parse(message) as CompletionMessage;
    } catch {
      return;
    }
    if (!this.waiters.has(msg.id)) return;
    if (msg.ok) this.settle(msg.id, (w) => w.resolve(msg.result));
    else this.settle(msg.id, (w) => w.reject(AppError.from(msg.error)));
  }

  /** Last look at the job before answering 504: the completion message may have been lost. */
  private async onTimeout(skill: string, id: string): Promise<void> {
    if (!this.waiters.has(id)) return;
    try {
      const job = await this.queue(skill).getJob(id);
      const state = job ? await job.getState() : 'unknown';
      if (job && state === 'completed') {
        this.settle(id, (w) => w.resolve(job.returnvalue as InferJobResult));
        return;
      }
      if (job && state === 'failed') {
        this.settle(id, (w) => w.reject(decodeFailure(job.failedReason)));
        return;
      }
      // Nobody waits for it any more: do not spend a model run on it.
      if (job && (state === 'waiting' || state === 'prioritized' || state === 'delayed')) {
        await job.remove().catch(() => undefined);
      }
    } catch (err) {
      this.deps.logger.warn({ err, id }, 'could not read a timed-out job');
    }
    this.settle(id, (w) => w.reject(new AppError('JOB_TIMEOUT', undefined, { skill })));
  }
}
