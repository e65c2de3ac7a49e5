import { randomUUID } from 'node:crypto';
import { type Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { AppError } from '../errors/index.js';
import type { Logger } from '../observability/logger.js';
import { Backpressure } from './backpressure.js';
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
  /** Finished synchronous jobs stay this long, so a waiter that missed the message can read them. */
  retentionS: number;
  /** Waiting jobs a skill may have before new ones are refused. */
  maxDepth: (skill: string) => number;
  logger: Logger;
}

export interface RunOptions {
  /** Set for a deterministic request: identical requests in flight share one job (and one model run). */
  coalesceId?: string;
  /**
   * Epoch ms when the request reached the gateway (default: `data.enqueuedAt`). A coalesced
   * request that arrived before the job finished shares its result even if it reaches Redis
   * after: the two were in flight at the same time.
   */
  arrivedAt?: number;
  priority: number;
}

export interface SubmitOptions {
  /** BullMQ job id; an existing id returns the existing job (idempotent submit). */
  jobId: string;
  priority: number;
  retentionS: number;
}

interface Waiter {
  resolve: (r: InferJobResult) => void;
  reject: (e: AppError) => void;
}

/** How long a completed coalesced job is kept for requests that arrived while it ran, in s. */
const COALESCED_KEEP_S = 2;

/** Window in which a tenant's submissions to a skill count as its backlog (for fair priorities). */
const BACKLOG_WINDOW_S = 10;

/**
 * Enqueues jobs and waits for their results. Completions arrive on one pub/sub channel that
 * every gateway subscribed to at start, so any gateway can wait on any job — which is what lets
 * identical requests on different gateways share one job. Pub/sub can lose a message (e.g.
 * across a reconnect), so a waiter whose deadline comes reads the job's final state once before
 * it gives up.
 */
export class JobProducer {
  private readonly queues = new Map<string, Queue>();
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly channel: string;
  private readonly backpressure: Backpressure;

  constructor(private readonly deps: ProducerDeps) {
    this.channel = completionChannel(deps.keyPrefix);
    this.backpressure = new Backpressure(deps.maxDepth);
  }

  async start(): Promise<void> {
    this.deps.subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.onCompletion(message);
    });
    await this.deps.subscriber.subscribe(this.channel);
  }

  /** Refuses at once (503 OVERLOADED) when the skill's queue is full. */
  admit(skill: string): Promise<void> {
    return this.backpressure.admit(skill, this.queue(skill));
  }

  /**
   * How many jobs the tenant submitted to the skill in the last window (this one included):
   * the fairness term of its priority. 0 when Redis cannot tell.
   */
  async tenantBacklog(skill: string, tenantId: string): Promise<number> {
    const window = Math.floor(Date.now() / (BACKLOG_WINDOW_S * 1000));
    const key = `${this.deps.keyPrefix}:backlog:${skill}:${tenantId}:${window}`;
    try {
      const [[, n] = []] =
        (await this.deps.redis
          .multi()
          .incr(key)
          .expire(key, BACKLOG_WINDOW_S * 2)
          .exec()) ?? [];
      return Number(n ?? 1) - 1;
    } catch {
      return 0;
    }
  }

  /** Enqueues one inference and resolves with its result, or rejects when `data.deadlineAt` passes. */
  async run(data: InferJobData & { deadlineAt: number }, opts: RunOptions): Promise<InferJobResult> {
    const id = opts.coalesceId ?? randomUUID();
    const done = this.wait(data.skill, id, data.deadlineAt - Date.now());
    try {
      const queue = this.queue(data.skill);
      await this.enqueue(queue, data, id, opts);
      if (opts.coalesceId) await this.joinFinished(queue, data, id, opts);
    } catch (err) {
      this.settle(id, (w) => w.reject(new AppError('QUEUE_UNAVAILABLE', undefined, undefined, { cause: err })));
    }
    return done;
  }

  private enqueue(queue: Queue, data: InferJobData, id: string, opts: RunOptions): Promise<unknown> {
    return queue.add('infer', data, {
      jobId: id,
      priority: opts.priority,
      attempts: 1,
      // A coalesced job stays a moment after it completes, for identical requests that arrived
      // while it ran but reach Redis after (see joinFinished); a failed one goes at once, so the
      // next identical request tries afresh. Other jobs are kept only for a waiter that lost its
      // message; the count bounds Redis memory under load.
      removeOnComplete: opts.coalesceId
        ? { age: COALESCED_KEEP_S, count: 1_000 }
        : { age: this.deps.retentionS, count: 1_000 },
      removeOnFail: opts.coalesceId ? true : { age: this.deps.retentionS, count: 1_000 },
    });
  }

  /**
   * Adding an id that exists is a no-op, and a job that already completed publishes nothing
   * more. A request that arrived before that job finished shares its result, read here with one
   * HMGET; one that arrived after it finished is a new request, and the finished job is
   * replaced by a fresh one.
   */
  private async joinFinished(queue: Queue, data: InferJobData, id: string, opts: RunOptions): Promise<void> {
    const [finishedOn, returnvalue] = await this.deps.redis.hmget(queue.toKey(id), 'finishedOn', 'returnvalue');
    if (!finishedOn) return; // waiting or running: its completion message is still to come
    if (returnvalue && Number(finishedOn) >= (opts.arrivedAt ?? data.enqueuedAt)) {
      const result = JSON.parse(returnvalue) as InferJobResult;
      this.settle(id, (w) => w.resolve(result));
      return;
    }
    // If another gateway replaced it first, its new job is the one joined.
    await queue.remove(id).catch(() => 0);
    await this.enqueue(queue, data, id, opts);
  }

  /** Enqueues without waiting (async jobs); an existing job id returns the existing job. */
  async submit(data: InferJobData, opts: SubmitOptions): Promise<Job<InferJobData, InferJobResult>> {
    const queue = this.queue(data.skill);
    try {
      await queue.add('infer', data, {
        jobId: opts.jobId,
        priority: opts.priority,
        attempts: 1,
        removeOnComplete: { age: opts.retentionS },
        removeOnFail: { age: opts.retentionS },
      });
      const job = await queue.getJob(opts.jobId);
      if (!job) throw new Error('the job vanished right after it was added');
      return job;
    } catch (err) {
      throw new AppError('QUEUE_UNAVAILABLE', undefined, undefined, { cause: err });
    }
  }

  async getJob(skill: string, id: string): Promise<Job<InferJobData, InferJobResult> | undefined> {
    try {
      return (await this.queue(skill).getJob(id)) ?? undefined;
    } catch (err) {
      throw new AppError('QUEUE_UNAVAILABLE', undefined, undefined, { cause: err });
    }
  }

  /** Waiters currently open; exported as a gauge. */
  pending(): number {
    return this.waiters.size;
  }

  async close(): Promise<void> {
    if (this.deps.subscriber.status === 'ready') {
      await this.deps.subscriber.unsubscribe(this.channel).catch(() => undefined);
    }
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
      const timer = setTimeout(() => void this.onDeadline(skill, id), Math.max(0, timeoutMs));
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
    if (msg.skill) this.backpressure.completed(msg.skill);
    if (!this.waiters.has(msg.id)) return;
    if (msg.ok) this.settle(msg.id, (w) => w.resolve(msg.result));
    else this.settle(msg.id, (w) => w.reject(AppError.from(msg.error)));
  }

  /** Last look at the job before answering 504: the completion message may have been lost. */
  private async onDeadline(skill: string, id: string): Promise<void> {
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
    } catch (err) {
      this.deps.logger.warn({ err, id }, 'could not read a job past its deadline');
    }
    // Still waiting: the dispatcher drops it unread, since its deadline is in the job.
    this.settle(id, (w) => w.reject(new AppError('DEADLINE_EXCEEDED', undefined, { skill })));
  }
}
