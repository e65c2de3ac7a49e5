import { randomUUID } from 'node:crypto';
import { startBenchCluster } from '../bench/cluster.js';
import { startPostgresInstance } from '../test/helpers/postgres-instance.js';
import { OwnRedis } from '../test/helpers/redis-server.js';
import { type ChaosContext, type Experiment, type Outcome, settled } from './experiment.js';
import { startLoad } from './load.js';

export interface SuiteOptions {
  experiments: Experiment[];
  faultMs: number;
  concurrency: number;
  print: (line: string) => void;
  /** Ports from here (nginx, then the gateways, nginx's status at +20); free ports when unset. */
  basePort?: number;
  keyPrefix?: string;
  /** Called after each experiment (the runner writes its section of docs/RESILIENCE.md). */
  onOutcome?: (o: Outcome) => void;
}

/**
 * The cluster every experiment runs against: the real roles under the real supervisor and nginx,
 * on a private Redis (the project's redis.conf: AOF) and a private Postgres that experiments may
 * kill, on its own ports, run directory and key prefix. Two gateways, two dispatchers, two nlp
 * replicas, so one of each can fail; settings that make a failure show within seconds are listed
 * in {@link CHAOS_ENV} (and in docs/RESILIENCE.md).
 */
export const CHAOS_ENV: Record<string, string> = {
  SKILLS: 'nlp',
  GATEWAY_COUNT: '2',
  DISPATCHER_COUNT: '2',
  SKILL_REPLICAS: '2',
  SKILL_REPLICAS_MAX: '2',
  AUTOSCALE: 'off',
  // A dead dispatcher's jobs are handed over once their lock expires: seconds, not the default 30 s.
  WORKER_LOCK_MS: '5000',
  WORKER_STALLED_CHECK_MS: '2500',
  SKILL_KEEPALIVE_MS: '2000',
  // A hung replica also stops heartbeating; with the default 4 s TTL it would leave the registry
  // during a 6 s hang and come back with a fresh breaker. Longer, so the breaker is what is seen.
  SKILL_TTL_MS: '15000',
  SKILL_BREAKER_RESET_MS: '2000',
  MAX_QUEUE_DEPTH: '50',
  NGINX_CONN_PER_IP: '60000',
  LOG_LEVEL: 'warn',
};

/** Runs `experiments` one after another on one cluster; returns their outcomes. */
export async function runSuite(opts: SuiteOptions): Promise<Outcome[]> {
  const redis = await OwnRedis.start();
  const pg = await startPostgresInstance().catch(async (err: unknown) => {
    await redis.destroy();
    throw err;
  });
  const ports: Record<string, string> = opts.basePort
    ? {
        PUBLIC_PORT: String(opts.basePort),
        GATEWAY_BASE_PORT: String(opts.basePort + 1),
        NGINX_STATUS_PORT: String(opts.basePort + 20),
      }
    : {};
  const dropDependencies = async () => {
    redis.resume();
    await pg.resume().catch(() => undefined);
    await Promise.allSettled([redis.destroy(), pg.destroy()]);
  };
  const cluster = await startBenchCluster(opts.print, {
    ...CHAOS_ENV,
    ...ports,
    REDIS_URL: redis.url,
    DATABASE_URL: pg.url,
    REDIS_PERSISTENCE: 'require',
    KEY_PREFIX: opts.keyPrefix ?? `chaos-${randomUUID().slice(0, 8)}`,
  }).catch(async (err: unknown) => {
    await dropDependencies();
    throw err;
  });
  const onSignal = () => {
    cluster.killSync();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  const ctx: ChaosContext = {
    cluster,
    redis,
    pg,
    key: cluster.headers.Authorization!.replace(/^Bearer /, ''),
    faultMs: opts.faultMs,
    concurrency: opts.concurrency,
    print: opts.print,
  };
  const outcomes: Outcome[] = [];
  try {
    // Warm-up, not measured: models load on their first call, caches and connections fill.
    const warm = startLoad({ endpoint: cluster.endpoint, key: ctx.key, concurrency: opts.concurrency, maxMs: 5_000 });
    await new Promise((r) => setTimeout(r, 5_000));
    await warm.stop();
    for (const e of opts.experiments) {
      opts.print(`\n== ${e.name}: ${e.title}`);
      await settled(ctx);
      const o = await e.run(ctx);
      outcomes.push(o);
      opts.onOutcome?.(o);
      // Let restarted processes come back and breakers close before the next experiment.
      await settled(ctx);
      await new Promise((r) => setTimeout(r, 3_000));
    }
  } finally {
    process.off('SIGINT', onSignal);
    await cluster.stop().catch(() => undefined);
    await dropDependencies();
  }
  return outcomes;
}
