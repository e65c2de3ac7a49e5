import { type Job, Worker } from 'bullmq';
import type { RedisClient } from '../lib/redis.js';
import type { Registry } from 'prom-client';
import type { Config } from '../config/index.js';
import { AppError } from '../errors/index.js';
import { METRICS } from '../observability/catalogue.js';
import type { Logger } from '../observability/logger.js';
import { counter, gauge, histogram } from '../observability/metrics.js';
import type { SkillClientPool } from '../skills/client-pool.js';
import { inferBatch } from '../skills/infer-batch.js';
import { inferOnce } from '../skills/infer-once.js';
import type { CachedRegistry, SkillInfo } from '../skills/registry.js';
import { type BatchItemResult, DynamicBatcher } from './batcher.js';
import { awaitReplica, whileSkillAbsent } from './skill-wait.js';
import { withStreaming } from './stream-job.js';
import { batchSettings, workerConcurrency } from './batch-settings.js';
import {
  announceCompletions,
  type CompletionMessage,
  completionChannel,
  encodeFailure,
  type InferJobData,
  type InferJobResult,
  queuePrefix,
} from './job.js';

export interface DispatcherDeps {
  config: Config;
  /** Commands and publishing. */
  redis: RedisClient;
  /** A connection BullMQ workers may block on (maxRetriesPerRequest: null). */
  workerConnection: RedisClient;
  registry: CachedRegistry;
  pool: SkillClientPool;
  logger: Logger;
  metrics: Registry;
}

export interface Dispatcher {
  /** Starts a worker for every skill in the catalogue, and keeps watching for new skills. */
  start(): Promise<void>;
  /** Skills whose worker is running (consuming its queue). */
  consuming(): string[];
  close(): Promise<void>;
}

/** A job handed over by BullMQ, waiting in a batcher. */
interface Picked {
  job: Job<InferJobData, InferJobResult>;
  /** Epoch ms when BullMQ handed it over. */
  pickedAt: number;
}

/**
 * Pulls jobs from `skill:<name>` queues, calls the skill over gRPC and completes each job.
 * With batching (a skill's `maxBatchSize` > 1, see batch-settings.ts) the jobs of a skill go
 * through a {@link DynamicBatcher} into InferBatch calls; each job still completes with its own
 * result or fails with its own error.
 */
export function createDispatcher(deps: DispatcherDeps): Dispatcher {
  const { config, logger } = deps;
  const workers = new Map<string, Worker<InferJobData, InferJobResult>>();
  const batchers = new Map<string, DynamicBatcher<Picked, InferJobResult>>();
  const channel = completionChannel(config.KEY_PREFIX);
  let watch: NodeJS.Timeout | undefined;
  const jobsTotal = counter(deps.metrics, METRICS.jobs);
  const queueWait = histogram(deps.metrics, METRICS.queueWait);
  const skillCall = histogram(deps.metrics, METRICS.dispatchCall);
  const batchSize = histogram(deps.metrics, METRICS.batchSize);
  const batchWait = histogram(deps.metrics, METRICS.batchWait);
  const batchCompute = histogram(deps.metrics, METRICS.batchCompute);
  gauge(deps.metrics, METRICS.batchPending, function collect() {
    for (const [skill, batcher] of batchers) this.set({ skill }, batcher.pending);
  });

  function timeLeft(job: Job<InferJobData, InferJobResult>): number {
    return job.data.deadlineAt === undefined ? Infinity : job.data.deadlineAt - Date.now();
  }
  /**
   * When a call for `jobs` must end (epoch ms): the latest of their deadlines, as they are, never
   * later than SKILL_CALL_TIMEOUT_MS from now.
   */
  function callDeadline(jobs: Job<InferJobData, InferJobResult>[]): number {
    const cap = Date.now() + config.SKILL_CALL_TIMEOUT_MS;
    return Math.min(cap, Math.max(...jobs.map((j) => j.data.deadlineAt ?? cap)));
  }
  function expired(job: Job<InferJobData, InferJobResult>): boolean {
    return timeLeft(job) <= 0;
  }
  /**
   * Until when a job waits for an absent skill. An accepted async job (it has a requestHash; its
   * client holds an id) waits until its deadline, else SKILL_WAIT_MS. A request someone is
   * waiting on answers SKILL_UNAVAILABLE sooner, after long enough for a skill to re-announce
   * (two heartbeats), so a skill that is down is reported quickly.
   */
  function waitUntil(job: Job<InferJobData, InferJobResult>): number {
    const now = Date.now();
    if (job.data.requestHash !== undefined) return job.data.deadlineAt ?? now + config.SKILL_WAIT_MS;
    return Math.min(job.data.deadlineAt ?? Infinity, now + 2 * config.SKILL_HEARTBEAT_MS);
  }
  /** An accepted async job: its client holds an id and will read the outcome later. */
  function isAccepted(job: Job<InferJobData, InferJobResult>): boolean {
    return job.data.requestHash !== undefined;
  }
  function expiredError(job: Job<InferJobData, InferJobResult>): AppError {
    jobsTotal.inc({ skill: job.data.skill, outcome: 'expired' });
    return new AppError('DEADLINE_EXCEEDED', `${job.data.skill}: the deadline passed while the job waited`);
  }

  async function processJob(job: Job<InferJobData, InferJobResult>): Promise<InferJobResult> {
    const { skill, item } = job.data;
    const queueMs = Date.now() - job.data.enqueuedAt;
    queueWait.observe({ skill }, queueMs / 1000);
    // Nobody can use the answer any more: do not spend the model on it.
    const left = timeLeft(job);
    if (left <= 0) throw encodeFailure(expiredError(job));
    const t0 = performance.now();
    try {
      const result = await whileSkillAbsent(
        deps.registry,
        skill,
        waitUntil(job),
        () => inferOnce(deps.pool, skill, job.id ?? '', item, callDeadline([job])),
        isAccepted(job),
      );
      return { ...result, timing: { ...result.timing, queueMs } };
    } catch (err) {
      throw encodeFailure(err);
    } finally {
      skillCall.observe({ skill }, (performance.now() - t0) / 1000);
    }
  }

  /** One InferBatch call for jobs of one skill, task and model version (the batcher's key). */
  async function runBatch(skill: string, picked: Picked[]): Promise<BatchItemResult<InferJobResult>[]> {
    const sentAt = Date.now();
    for (const { job, pickedAt } of picked) {
      queueWait.observe({ skill }, (sentAt - job.data.enqueuedAt) / 1000);
      batchWait.observe({ skill }, (sentAt - pickedAt) / 1000);
    }
    // Jobs whose deadline passed while the batch formed are dropped, not computed.
    const live = picked.filter(({ job }) => !expired(job));
    const results = new Map<Picked, BatchItemResult<InferJobResult>>();
    for (const p of picked) if (!live.includes(p)) results.set(p, { ok: false, error: expiredError(p.job) });
    if (live.length === 0) return picked.map((p) => results.get(p)!);
    batchSize.observe({ skill }, live.length);
    const t0 = performance.now();
    const call = (jobs: Picked[], waitOutBreaker: boolean) =>
      whileSkillAbsent(
        deps.registry,
        skill,
        Math.max(...jobs.map(({ job }) => waitUntil(job))),
        // The most patient job bounds the call: one impatient job must not cut the others short.
        () =>
          inferBatch(
            deps.pool,
            skill,
            jobs.map(({ job }) => ({ id: job.id ?? '', item: job.data.item })),
            callDeadline(jobs.map((p) => p.job)),
          ),
        waitOutBreaker,
      );
    // Every breaker of the skill open: the requests someone waits on fail at once (their gateway
    // answers from a stale entry, or 503), while the batch's accepted async jobs wait it out.
    let sent = live;
    try {
      const batch = await call(live, false).catch((err: unknown) => {
        const accepted = live.filter(({ job }) => isAccepted(job));
        if (!(err instanceof AppError) || err.code !== 'BREAKER_OPEN' || accepted.length === 0) throw err;
        for (const p of live) if (!isAccepted(p.job)) results.set(p, { ok: false, error: err });
        sent = accepted;
        return call(accepted, true);
      });
      batchCompute.observe({ skill }, batch.computeMs / 1000);
      batch.items.forEach((outcome, i) => {
        const p = sent[i]!;
        if (!outcome.ok) return results.set(p, outcome);
        const queueMs = sentAt - p.job.data.enqueuedAt;
        results.set(p, { ok: true, value: { ...outcome.value, timing: { ...outcome.value.timing, queueMs } } });
      });
      return picked.map((p) => results.get(p) ?? { ok: false, error: new AppError('SKILL_ERROR') });
    } finally {
      skillCall.observe({ skill }, (performance.now() - t0) / 1000);
    }
  }

  /** The processor for a skill's worker: straight to the skill, or through its batcher. */
  function processorFor(info: SkillInfo) {
    const settings = batchSettings(config, info.name, info.batching);
    if (settings.maxBatchSize <= 1) return { processor: processJob, settings };
    const batcher = new DynamicBatcher<Picked, InferJobResult>({
      ...settings,
      // One InferBatch targets one model: jobs batch only with jobs of the same task and
      // pinned model version (a multi-model skill may serve tasks from different models).
      key: ({ job }) => `${job.data.item.task}\u0000${job.data.item.modelVersion}`,
      run: (picked) => runBatch(info.name, picked),
    });
    batchers.set(info.name, batcher);
    const processor = async (job: Job<InferJobData, InferJobResult>): Promise<InferJobResult> => {
      try {
        if (expired(job)) throw expiredError(job);
        await awaitReplica(deps.registry, info.name, waitUntil(job));
        return await batcher.submit({ job, pickedAt: Date.now() });
      } catch (err) {
        throw encodeFailure(err);
      }
    };
    return { processor, settings };
  }

  function publish(msg: CompletionMessage): void {
    deps.redis.publish(channel, JSON.stringify(msg)).catch((err: unknown) => {
      // The waiter reads the job's final state when its deadline comes; nothing is lost.
      logger.warn({ err, id: msg.id }, 'could not publish a completion');
    });
  }

  function startWorker(info: SkillInfo): void {
    const skill = info.name;
    const { processor, settings } = processorFor(info);
    // Every series of the skill exists from the start: dashboards and rates read an idle skill
    // (or one whose quiet traffic the gateways' idle bypass serves) as 0, not as absent.
    const batched = settings.maxBatchSize > 1 ? [batchSize, batchWait, batchCompute] : [];
    for (const h of [queueWait, skillCall, ...batched]) h.zero({ skill });
    for (const outcome of ['completed', 'failed', 'expired']) jobsTotal.inc({ skill, outcome }, 0);
    const concurrency = workerConcurrency(settings, config.DISPATCHER_CONCURRENCY);
    // Streamed jobs (OpenAI-compatible `stream: true`) bypass the batcher: see stream-job.ts.
    const worker = new Worker<InferJobData, InferJobResult>(skill, withStreaming(processor, deps), {
      connection: deps.workerConnection,
      prefix: queuePrefix(config.KEY_PREFIX, skill),
      concurrency,
      // A dispatcher that dies mid-job stops renewing its locks; after lockDuration another
      // dispatcher's stalled-job check puts the job back in the queue: accepted work is not lost.
      lockDuration: config.WORKER_LOCK_MS,
      stalledInterval: config.WORKER_STALLED_CHECK_MS,
      maxStalledCount: 2,
    });
    announceCompletions(worker, skill, publish, (outcome) => jobsTotal.inc({ skill, outcome }));
    worker.on('error', (err) => logger.warn({ err, skill }, 'worker error'));
    workers.set(skill, worker);
    logger.info({ skill, batching: settings, concurrency }, 'dispatching');
  }

  async function sync(): Promise<void> {
    const { catalogue } = await deps.registry.get();
    for (const info of catalogue.values()) if (!workers.has(info.name)) startWorker(info);
  }

  return {
    async start() {
      await sync();
      watch = setInterval(() => {
        sync().catch((err: unknown) => logger.warn({ err }, 'could not read the skill catalogue'));
      }, config.REGISTRY_CACHE_MS * 2);
    },
    consuming: () => [...workers].filter(([, w]) => w.isRunning()).map(([name]) => name),
    async close() {
      clearInterval(watch);
      // Worker.close() waits for active jobs to finish, so accepted work completes; with Redis
      // gone there is nothing to finish them into, so do not wait.
      const force = deps.workerConnection.status !== 'ready';
      // Batchers stop delaying at once, so the jobs they hold complete while the workers close.
      await Promise.allSettled([
        ...[...workers.values()].map((w) => w.close(force)),
        ...[...batchers.values()].map((b) => b.close()),
      ]);
    },
  };
}
