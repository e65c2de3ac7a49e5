import { randomUUID } from 'node:crypto';
import { type Job, type JobsOptions, Queue } from 'bullmq';
import type { Tier } from '../auth/key-store.js';
import { pipelineFor } from '../lib/cluster-batch.js';
import type { RedisClient } from '../lib/redis.js';
import { AppError } from '../errors/index.js';
import type { Logger } from '../observability/logger.js';
import { Backpressure } from './backpressure.js';
import { defaultPriorityPolicy, type PriorityPolicy, priorityFor } from './priority.js';
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
  redis: RedisClient;
  /** A dedicated connection in subscriber mode. */
  subscriber: RedisClient;
  keyPrefix: string;
  /** Finished synchronous jobs stay this long, so a waiter that missed the message can read them. */
  retentionS: number;
  /** Waiting jobs a skill may have before new ones are refused. */
  maxDepth: (skill: string) => number;
  logger: Logger;
  /** How tiers and a tenant's recent jobs order the queue (default: defaultPriorityPolicy). */
  priority?: PriorityPolicy;
}

/** The tenant a job is for, as its priority needs it. */
export interface Tenant {
  id: string;
  tier: Tier;
}

/** One inference to compute through the queue: everything {@link JobProducer.enqueue} needs. */
export interface EnqueueRequest {
  skill: string;
  item: InferJobData['item'];
  requestId: string;
  tenant: Tenant;
  /** Epoch ms after which the answer is useless, fixed once when the request reached the cluster. */
  deadlineAt: number;
  /**
   * Deterministic requests: identical ones in flight share one job, whose id is `id`. A request
   * that reached the cluster (`arrivedAt`, epoch ms) before a shared job finished takes its result.
   */
  coalesce?: { id: string; arrivedAt: number };
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

/** One request waiting for job `id`; identical requests on a gateway each have their own. */
interface Waiter {
  id: string;
  resolve: (r: InferJobResult) => void;
  reject: (e: AppError) => void;
  timer?: NodeJS.Timeout;
  /** This request's own deadline (a coalesced job carries the deadline of the request that added it). */
  deadlineAt: number;
  /** Coalesced requests: queue the job again, with this request's data and deadline. */
  retry?: () => Promise<void>;
}

/** How a job ended: its result or its error. */
type Outcome = { ok: true; result: InferJobResult } | { ok: false; error: AppError };

/** A finished job as read from its hash: what a late or lost-message waiter answers with. */
type Finished = { finishedOn: number } & Outcome;

/**
 * Finished jobs kept per queue at most: with `retentionS` it bounds Redis memory, and it must
 * stay larger than a deadline's worth of completions, or a waiter that lost its message finds
 * nothing at its deadline (at 2,000 jobs/s, 10,000 is 5 s).
 */
export const RETAINED_JOBS = 10_000;

/** The BullMQ options of a job a request waits for (see JobProducer.run). */
export function waitedJobOptions(jobId: string, priority: number, retentionS: number): JobsOptions {
  const keep = { age: retentionS, count: RETAINED_JOBS };
  return { jobId, priority, attempts: 1, removeOnComplete: keep, removeOnFail: keep };
}

/**
 * A coalesced request whose shared job timed out (it carried an earlier request's deadline) runs
 * it again if it has at least this long left; otherwise it answers the 504 too.
 */
const RETRY_MIN_LEFT_MS = 50;

/** The last look at a job past a waiter's deadline may take this long; then the answer is 504. */
const FINAL_READ_MS = 250;

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
  private readonly waiters = new Map<string, Set<Waiter>>();
  /** Job ids this gateway is re-queueing right now (see replace). */
  private readonly replacing = new Set<string>();
  private readonly onMessage = (channel: string, message: string) => {
    if (channel === this.channel) this.onCompletion(message);
  };
  private readonly channel: string;
  private readonly backpressure: Backpressure;
  /** Tenants' job counts per skill and window: the last count Redis returned, and what is not sent yet. */
  private readonly backlogs = new Map<string, { known: number; unsent: number }>();
  private backlogFlush?: NodeJS.Immediate;

  constructor(private readonly deps: ProducerDeps) {
    this.channel = completionChannel(deps.keyPrefix);
    this.backpressure = new Backpressure(deps.maxDepth);
  }

  /**
   * The one way a request's inference enters the queue: refuses at once when the skill's queue
   * is full (503 OVERLOADED), orders the job by the tenant's tier and recent jobs, and resolves
   * with its result (or rejects by its deadline).
   */
  async enqueue(req: EnqueueRequest): Promise<InferJobResult> {
    await this.admit(req.skill);
    return this.run(
      {
        skill: req.skill,
        requestId: req.requestId,
        enqueuedAt: Date.now(),
        tenantId: req.tenant.id,
        deadlineAt: req.deadlineAt,
        item: req.item,
      },
      {
        coalesceId: req.coalesce?.id,
        arrivedAt: req.coalesce?.arrivedAt,
        priority: this.priority(req.skill, req.tenant),
      },
    );
  }

  /** The BullMQ priority of the tenant's next job to the skill (and the job counted in its backlog). */
  priority(skill: string, tenant: Tenant): number {
    const tenantBacklog = this.countBacklog(skill, tenant.id);
    return priorityFor(
      { tier: tenant.tier, tenantBacklog, now: Date.now() },
      this.deps.priority ?? defaultPriorityPolicy,
    );
  }

  /** Whether the skill's queue is idle as far as this gateway knows: nothing waiting, nothing of its own in flight. */
  idle(skill: string): boolean {
    return this.backpressure.idle(skill, this.queue(skill));
  }

  async start(): Promise<void> {
    this.deps.subscriber.on('message', this.onMessage);
    await this.deps.subscriber.subscribe(this.channel);
  }

  /** Refuses at once (503 OVERLOADED) when the skill's queue is full. */
  admit(skill: string): Promise<void> {
    return this.backpressure.admit(skill, this.queue(skill));
  }

  /**
   * How many jobs the tenant sent the skill in the current window before this one (the fairness
   * term of its priority), and counts this one. The count is the cluster's as Redis last returned
   * it plus what this gateway sent since, so no request waits for it: the counts of one
   * event-loop turn go to Redis together, one INCRBY per tenant and skill.
   */
  private countBacklog(skill: string, tenantId: string): number {
    const window = Math.floor(Date.now() / (BACKLOG_WINDOW_S * 1000));
    const key = `${this.deps.keyPrefix}:backlog:${skill}:${tenantId}:${window}`;
    let b = this.backlogs.get(key);
    if (!b) this.backlogs.set(key, (b = { known: 0, unsent: 0 }));
    const before = b.known + b.unsent;
    b.unsent++;
    this.backlogFlush ??= setImmediate(() => this.flushBacklogs(window));
    return before;
  }

  private flushBacklogs(window: number): void {
    this.backlogFlush = undefined;
    // Tenants' counters live in many slots: on a Redis Cluster this is one command per key.
    const pipeline = pipelineFor(this.deps.redis);
    const sent: [string, { known: number; unsent: number }, number][] = [];
    for (const [key, b] of this.backlogs) {
      // Counts of a window that has passed are no one's business any more.
      if (Number(key.slice(key.lastIndexOf(':') + 1)) < window) {
        this.backlogs.delete(key);
        continue;
      }
      if (b.unsent === 0) continue;
      pipeline.incrby(key, b.unsent).expire(key, BACKLOG_WINDOW_S * 2);
      sent.push([key, b, b.unsent]);
      b.unsent = 0;
    }
    if (sent.length === 0) return;
    pipeline
      .exec()
      .then((results) => {
        sent.forEach(([, b], i) => {
          const [err, n] = results?.[2 * i] ?? [];
          if (!err && typeof n === 'number') b.known = n;
        });
      })
      // Without Redis the count stays this gateway's own: priorities degrade, requests do not fail.
      .catch(() => {
        for (const [, b, n] of sent) b.known += n;
      });
  }

  /**
   * Enqueues one inference and resolves with its result, or rejects with 504 DEADLINE_EXCEEDED
   * when `data.deadlineAt` passes (each request by its own deadline, coalesced or not).
   */
  run(data: InferJobData & { deadlineAt: number }, opts: RunOptions): Promise<InferJobResult> {
    const id = opts.coalesceId ?? randomUUID();
    return new Promise<InferJobResult>((resolve, reject) => {
      const waiter: Waiter = { id, resolve, reject, deadlineAt: data.deadlineAt };
      if (opts.coalesceId) waiter.retry = () => this.replace(this.queue(data.skill), data, id, opts);
      let list = this.waiters.get(id);
      if (!list) this.waiters.set(id, (list = new Set()));
      list.add(waiter);
      waiter.timer = setTimeout(
        () => void this.onDeadline(data.skill, waiter),
        Math.max(0, data.deadlineAt - Date.now()),
      );
      this.enqueueOrJoin(data, id, opts, waiter).catch((err: unknown) =>
        this.settleOne(waiter, (w) => w.reject(queueUnavailable(err))),
      );
    });
  }

  /**
   * Adds the job. Adding an id that exists is a no-op, and a job that already finished publishes
   * nothing more, so a coalesced request looks once (one HMGET): a job that finished after the
   * request arrived was in flight with it, and its outcome is the answer; one that finished
   * before is another request's, kept for late readers, and is replaced by a fresh job.
   */
  private async enqueueOrJoin(data: InferJobData, id: string, opts: RunOptions, waiter: Waiter): Promise<void> {
    const queue = this.queue(data.skill);
    const added = this.addJob(queue, data, id, opts);
    if (!opts.coalesceId) return void (await added);
    // Read at once, not after the add's reply: one round trip, not two. Either order answers the
    // same, since an add of an existing id changes nothing, and this request's waiter is already
    // listening should the job finish in between.
    const [, finished] = await Promise.all([added, this.readFinished(queue, id)]);
    if (!finished) return; // waiting or running: its completion message is still to come
    if (finished.finishedOn >= (opts.arrivedAt ?? data.enqueuedAt)) {
      this.answer(waiter, finished);
      return;
    }
    await this.replace(queue, data, id, opts);
  }

  /** A fresh job in place of a finished one. If another gateway replaced it first, its new job is the one joined. */
  private async replace(queue: Queue, data: InferJobData, id: string, opts: RunOptions): Promise<void> {
    if (this.replacing.has(id)) return; // another request on this gateway is already doing it
    this.replacing.add(id);
    try {
      await queue.remove(id).catch(() => 0);
      await this.addJob(queue, data, id, opts);
    } finally {
      this.replacing.delete(id);
    }
  }

  /** Answers a request with its job's outcome. */
  private answer(waiter: Waiter, outcome: Outcome): void {
    if (outcome.ok) this.settleOne(waiter, (w) => w.resolve(outcome.result));
    else this.fail(waiter, outcome.error);
  }

  /**
   * Answers a request with its job's error, except a coalesced request whose shared job ran out
   * of an earlier request's time while its own deadline is still ahead: it queues the job again.
   */
  private fail(waiter: Waiter, error: AppError): void {
    const { retry } = waiter;
    if (error.code === 'DEADLINE_EXCEEDED' && retry && waiter.deadlineAt - Date.now() >= RETRY_MIN_LEFT_MS) {
      retry().catch((err: unknown) => this.settleOne(waiter, (w) => w.reject(queueUnavailable(err))));
      return;
    }
    this.settleOne(waiter, (w) => w.reject(error));
  }

  /**
   * Finished jobs, coalesced or not, stay `retentionS` (and at most RETAINED_JOBS per queue), so a
   * waiter that lost its message can still read the outcome at its deadline.
   */
  private addJob(queue: Queue, data: InferJobData, id: string, opts: RunOptions): Promise<unknown> {
    return queue.add('infer', data, waitedJobOptions(id, opts.priority, this.deps.retentionS));
  }

  /** The job's outcome if it finished, in one round trip; undefined while it waits or runs (or is gone). */
  private async readFinished(queue: Queue, id: string): Promise<Finished | undefined> {
    const [finishedOn, returnvalue, failedReason] = await this.deps.redis.hmget(
      queue.toKey(id),
      'finishedOn',
      'returnvalue',
      'failedReason',
    );
    if (!finishedOn) return undefined;
    if (failedReason) return { finishedOn: Number(finishedOn), ok: false, error: decodeFailure(failedReason) };
    return { finishedOn: Number(finishedOn), ok: true, result: JSON.parse(returnvalue ?? 'null') as InferJobResult };
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
      throw queueUnavailable(err);
    }
  }

  async getJob(skill: string, id: string): Promise<Job<InferJobData, InferJobResult> | undefined> {
    try {
      return (await this.queue(skill).getJob(id)) ?? undefined;
    } catch (err) {
      throw queueUnavailable(err);
    }
  }

  /** Requests currently waiting for a job; exported as a gauge. */
  pending(): number {
    let n = 0;
    for (const list of this.waiters.values()) n += list.size;
    return n;
  }

  async close(): Promise<void> {
    if (this.deps.subscriber.status === 'ready') {
      await this.deps.subscriber.unsubscribe(this.channel).catch(() => undefined);
    }
    this.deps.subscriber.off('message', this.onMessage);
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    for (const id of [...this.waiters.keys()])
      for (const waiter of this.waitersOf(id)) this.settleOne(waiter, (w) => w.reject(new AppError('SHUTTING_DOWN')));
  }

  private queue(skill: string): Queue {
    let queue = this.queues.get(skill);
    if (!queue) {
      queue = new Queue(skill, { connection: this.deps.redis, prefix: queuePrefix(this.deps.keyPrefix, skill) });
      queue.on('error', (err) => this.deps.logger.warn({ err, skill }, 'queue error'));
      this.queues.set(skill, queue);
    }
    return queue;
  }

  /** Every request waiting for job `id` on this gateway. */
  private waitersOf(id: string): Waiter[] {
    return [...(this.waiters.get(id) ?? [])];
  }

  /** Answers one request; the others waiting for the same job keep waiting. */
  private settleOne(waiter: Waiter, fn: (w: Waiter) => void): void {
    const list = this.waiters.get(waiter.id);
    if (!list?.delete(waiter)) return;
    if (list.size === 0) this.waiters.delete(waiter.id);
    clearTimeout(waiter.timer);
    fn(waiter);
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
    const outcome: Outcome = msg.ok ? { ok: true, result: msg.result } : { ok: false, error: AppError.from(msg.error) };
    for (const waiter of this.waitersOf(msg.id)) this.answer(waiter, outcome);
  }

  /**
   * Last look at the job before answering 504: the completion message may have been lost. The
   * look is bounded, so a Redis that hangs does not hold the answer past the deadline for long.
   */
  private async onDeadline(skill: string, waiter: Waiter): Promise<void> {
    let finished: Finished | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      finished = await Promise.race([
        this.readFinished(this.queue(skill), waiter.id),
        new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), FINAL_READ_MS))),
      ]);
    } catch (err) {
      this.deps.logger.warn({ err, id: waiter.id }, 'could not read a job past its deadline');
    } finally {
      clearTimeout(timer);
    }
    // Past its own deadline, an expired shared job is this request's 504 too (fail does not retry).
    if (finished) this.answer(waiter, finished);
    // Still waiting: the dispatcher drops it unread, since its deadline is in the job.
    else this.settleOne(waiter, (w) => w.reject(new AppError('DEADLINE_EXCEEDED', undefined, { skill })));
  }
}

function queueUnavailable(err: unknown): AppError {
  return new AppError('QUEUE_UNAVAILABLE', undefined, undefined, { cause: err });
}
