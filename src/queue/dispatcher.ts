import { type Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Config } from '../config/index.js';
import { AppError } from '../errors/index.js';
import type { Logger } from '../observability/logger.js';
import type { SkillClientPool } from '../skills/client-pool.js';
import { inferOnce } from '../skills/infer-once.js';
import type { CachedRegistry } from '../skills/registry.js';
import {
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
  redis: Redis;
  /** A connection BullMQ workers may block on (maxRetriesPerRequest: null). */
  workerConnection: Redis;
  registry: CachedRegistry;
  pool: SkillClientPool;
  logger: Logger;
  metrics: Registry;
}

export interface Dispatcher {
  /** Starts a worker for every skill in the catalogue, and keeps watching for new skills. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Pulls jobs from `skill:<name>` queues, calls the skill over gRPC and completes each job. */
export function createDispatcher(deps: DispatcherDeps): Dispatcher {
  const { config, logger } = deps;
  const workers = new Map<string, Worker<InferJobData, InferJobResult>>();
  const channel = completionChannel(config.KEY_PREFIX);
  let watch: NodeJS.Timeout | undefined;

  const jobsTotal = new Counter({
    name: 'dispatcher_jobs_total',
    help: 'Jobs finished by this dispatcher, by skill and outcome',
    labelNames: ['skill', 'outcome'] as const,
    registers: [deps.metrics],
  });
  const queueWait = new Histogram({
    name: 'dispatcher_queue_wait_seconds',
    help: 'Time a job waited in its queue before a dispatcher took it',
    labelNames: ['skill'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [deps.metrics],
  });
  const skillCall = new Histogram({
    name: 'dispatcher_skill_call_seconds',
    help: 'gRPC round trip to the skill, as the dispatcher saw it',
    labelNames: ['skill'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [deps.metrics],
  });

  async function processJob(job: Job<InferJobData, InferJobResult>): Promise<InferJobResult> {
    const { skill, item, deadlineAt } = job.data;
    const queueMs = Date.now() - job.data.enqueuedAt;
    queueWait.observe({ skill }, queueMs / 1000);
    // Nobody can use the answer any more: do not spend the model on it.
    const left = deadlineAt === undefined ? Infinity : deadlineAt - Date.now();
    if (left <= 0) {
      jobsTotal.inc({ skill, outcome: 'expired' });
      throw encodeFailure(new AppError('DEADLINE_EXCEEDED', `${skill}: the deadline passed while the job waited`));
    }
    const t0 = performance.now();
    try {
      const result = await inferOnce(
        deps.pool,
        skill,
        job.id ?? '',
        item,
        Math.min(config.SKILL_CALL_TIMEOUT_MS, left),
      );
      return { ...result, timing: { ...result.timing, queueMs } };
    } catch (err) {
      throw encodeFailure(err);
    } finally {
      skillCall.observe({ skill }, (performance.now() - t0) / 1000);
    }
  }

  function publish(msg: CompletionMessage): void {
    deps.redis.publish(channel, JSON.stringify(msg)).catch((err: unknown) => {
      // The waiter reads the job's final state when its deadline comes; nothing is lost.
      logger.warn({ err, id: msg.id }, 'could not publish a completion');
    });
  }

  function startWorker(skill: string): void {
    const worker = new Worker<InferJobData, InferJobResult>(skill, processJob, {
      connection: deps.workerConnection,
      prefix: queuePrefix(config.KEY_PREFIX),
      concurrency: config.DISPATCHER_CONCURRENCY,
      // A dispatcher that dies mid-job stops renewing its locks; after lockDuration another
      // dispatcher's stalled-job check puts the job back in the queue: accepted work is not lost.
      lockDuration: config.WORKER_LOCK_MS,
      stalledInterval: config.WORKER_STALLED_CHECK_MS,
      maxStalledCount: 2,
    });
    worker.on('completed', (job, result) => {
      jobsTotal.inc({ skill, outcome: 'completed' });
      if (job.id) publish({ id: job.id, skill, ok: true, result });
    });
    worker.on('failed', (job, err) => {
      if (!job?.id) return;
      const final = job.finishedOn !== undefined || job.attemptsMade >= (job.opts.attempts ?? 1);
      if (!final) return;
      jobsTotal.inc({ skill, outcome: 'failed' });
      publish({ id: job.id, skill, ok: false, error: safeParse(err.message) });
    });
    worker.on('error', (err) => logger.warn({ err, skill }, 'worker error'));
    workers.set(skill, worker);
    logger.info({ skill }, 'dispatching');
  }

  async function sync(): Promise<void> {
    const { catalogue } = await deps.registry.get();
    for (const name of catalogue.keys()) if (!workers.has(name)) startWorker(name);
  }

  return {
    async start() {
      await sync();
      watch = setInterval(() => {
        sync().catch((err: unknown) => logger.warn({ err }, 'could not read the skill catalogue'));
      }, config.REGISTRY_CACHE_MS * 2);
    },
    async close() {
      clearInterval(watch);
      // Worker.close() waits for active jobs to finish, so accepted work completes; with Redis
      // gone there is nothing to finish them into, so do not wait.
      const force = deps.workerConnection.status !== 'ready';
      await Promise.allSettled([...workers.values()].map((w) => w.close(force)));
    },
  };
}

function safeParse(message: string): unknown {
  try {
    return JSON.parse(message);
  } catch {
    return new AppError('SKILL_ERROR').toJSON();
  }
}
