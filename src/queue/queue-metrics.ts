import { Queue } from 'bullmq';
import type { RedisClient } from '../lib/redis.js';
import type { Registry } from 'prom-client';
import { METRICS } from '../observability/catalogue.js';
import { gauge } from '../observability/metrics.js';
import type { CachedRegistry } from '../skills/registry.js';
import { queuePrefix } from './job.js';

/** How many jobs at the head of a queue the oldest-job age looks at. */
const HEAD = 10;
/** A scrape does not wait longer than this for Redis; the previous values stay meanwhile. */
const READ_TIMEOUT_MS = 1_000;

const STATES = ['waiting', 'prioritized', 'active', 'delayed', 'failed'] as const;

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The queue's view for Prometheus, read from Redis at scrape time: jobs per skill and state,
 * how long the head of each queue has waited, and how many replicas the registry lists per
 * skill. Every dispatcher reports the same numbers (queries deduplicate them with max).
 */
export function registerQueueMetrics(deps: {
  redis: RedisClient;
  registry: CachedRegistry;
  keyPrefix: string;
  metrics: Registry;
}): { close(): Promise<void> } {
  const queues = new Map<string, Queue>();
  const queue = (skill: string) => {
    let q = queues.get(skill);
    if (!q) {
      q = new Queue(skill, { connection: deps.redis, prefix: queuePrefix(deps.keyPrefix, skill) });
      queues.set(skill, q);
    }
    return q;
  };
  const skills = async () => [...(await deps.registry.get()).catalogue.keys()];

  gauge(deps.metrics, METRICS.queueJobs, async function collect() {
    const names = await within(skills(), READ_TIMEOUT_MS).catch(() => []);
    await Promise.all(
      names.map(async (skill) => {
        const counts = await within(
          queue(skill).getJobCounts(...STATES.map((s) => (s === 'waiting' ? 'wait' : s))),
          READ_TIMEOUT_MS,
        ).catch(() => undefined);
        if (!counts) return;
        for (const state of STATES) this.set({ skill, state }, counts[state === 'waiting' ? 'wait' : state] ?? 0);
      }),
    );
  });
  gauge(deps.metrics, METRICS.queueOldestAge, async function collect() {
    const names = await within(skills(), READ_TIMEOUT_MS).catch(() => []);
    const now = Date.now();
    await Promise.all(
      names.map(async (skill) => {
        const q = queue(skill);
        const head = await within(
          Promise.all([q.getJobs(['prioritized'], 0, HEAD - 1, true), q.getJobs(['wait'], 0, HEAD - 1, true)]),
          READ_TIMEOUT_MS,
        ).catch(() => undefined);
        if (!head) return;
        const oldest = Math.min(now, ...head.flat().map((j) => j?.timestamp ?? now));
        this.set({ skill }, Math.max(0, (now - oldest) / 1000));
      }),
    );
  });
  gauge(deps.metrics, METRICS.skillReplicas, async function collect() {
    const snapshot = await within(deps.registry.get(), READ_TIMEOUT_MS).catch(() => undefined);
    if (!snapshot) return;
    for (const skill of snapshot.catalogue.keys())
      this.set({ skill }, snapshot.live.filter((r) => r.name === skill).length);
  });
  return { close: async () => void (await Promise.allSettled([...queues.values()].map((q) => q.close()))) };
}
