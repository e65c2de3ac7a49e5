import { Authenticator } from '../auth/authenticator.js';
import { KeyStore, type Tier } from '../auth/key-store.js';
import { RateLimiter } from '../cache/rate-limiter.js';
import { RedisGuard } from '../cache/redis-guard.js';
import { ResponseCache } from '../cache/response-cache.js';
import type { Config } from '../config/index.js';
import { migrate } from '../db/migrate.js';
import type { ShutdownStep } from '../lib/lifecycle.js';
import { createPgPool } from '../lib/postgres.js';
import { closeRedis, describeRedis, openRedis, redisReady } from '../lib/redis.js';
import { PgEntityStore } from '../memory/pg-entity-store.js';
import type { Logger } from '../observability/logger.js';
import type { Registry } from 'prom-client';
import { priorityPolicy } from '../queue/priority.js';
import { JobProducer } from '../queue/producer.js';
import { TokenStreamReader } from '../queue/token-reader.js';
import { inferOnce } from '../skills/infer-once.js';
import { inferStreamOnce } from '../queue/infer-stream-once.js';
import { CachedRegistry, SkillRegistry } from '../skills/registry.js';
import { createSkillPool } from '../skills/skill-pool.js';
import type { GatewayDeps } from './deps.js';
import { DirectStreams } from './direct-streams.js';
import { GatewayPresence } from './presence.js';

export interface OpenGateway {
  deps: GatewayDeps;
  /** Marks the gateway as draining: /readyz answers 503 from now on. */
  drain(): void;
  /** Closing steps, in order (after the HTTP server has stopped). */
  closing: ShutdownStep[];
}

/**
 * Opens everything a gateway depends on (Redis, Postgres, migrations, queue producer, registry,
 * limiter, cache) and wires it into {@link GatewayDeps}. The role's main and the tests build
 * gateways with this one function, so they cannot drift apart.
 */
export async function openGateway(
  config: Config,
  { instance, logger, metrics }: { instance: string; logger: Logger; metrics: Registry },
): Promise<OpenGateway> {
  const redis = openRedis(config, { name: 'gateway', commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS });
  const subscriber = openRedis(config, { name: 'gateway-sub', blocking: true });
  // The rate limiter and cache get a connection of their own: BullMQ defines dozens of scripts on
  // the queue connection, and ioredis copies them into every pipeline built on it (~10x the cost).
  // Its commands are bounded like the breaker's calls, so a hung Redis does not pile them up.
  const hot = openRedis(config, {
    name: 'gateway-hot',
    commandTimeoutMs: config.REDIS_TIMEOUT_MS,
    autoPipelining: true,
  });
  await Promise.all([redisReady(redis, describeRedis(config)), redisReady(hot, describeRedis(config))]);
  const pg = createPgPool(config.DATABASE_URL, { name: 'skillserve-gateway', schema: config.DATABASE_SCHEMA });
  const applied = await migrate(pg, config.DATABASE_SCHEMA);
  if (applied.length > 0) logger.info({ applied }, 'migrations applied');
  const authenticator = new Authenticator({
    keys: new KeyStore(pg),
    ttlMs: config.KEY_CACHE_TTL_MS,
    lookupTimeoutMs: config.KEY_LOOKUP_TIMEOUT_MS,
  });
  const memory = new PgEntityStore(pg, {
    writeTimeoutMs: config.MEMORY_WRITE_TIMEOUT_MS,
    idempotencyRetentionS: config.IDEMPOTENCY_RETENTION_S,
  });
  // Idempotency keys past their retention, swept now and then (every gateway; the DELETE is cheap).
  const sweep = setInterval(() => void memory.sweepIdempotencyKeys().catch(() => undefined), 15 * 60_000);
  sweep.unref();
  const jobs = new JobProducer({
    maxDepth: (skill) => config.QUEUE_DEPTHS[skill] ?? config.MAX_QUEUE_DEPTH,
    redis,
    subscriber,
    keyPrefix: config.KEY_PREFIX,
    retentionS: config.JOB_RETENTION_S,
    logger,
    priority: priorityPolicy(config),
  });
  await jobs.start();
  // Streamed generations (OpenAI-compatible `stream: true`) read their tokens over a connection of their own.
  const tokenConnection = openRedis(config, { name: 'gateway-tokens', blocking: true, autoPipelining: true });
  const tokens = new TokenStreamReader(tokenConnection, redis, config.KEY_PREFIX, logger);
  const directStreams = new DirectStreams();
  const skills = new CachedRegistry(
    new SkillRegistry(redis, config.KEY_PREFIX),
    config.REGISTRY_CACHE_MS,
    config.REDIS_TIMEOUT_MS,
  );
  // The direct path (Redis down) calls skills through the same breakers as the dispatchers, on
  // one channel per replica: it carries traffic only during an outage.
  const clients = createSkillPool({ config, registry: skills, logger, metrics, channels: 1 });
  const guard = new RedisGuard(hot, {
    timeoutMs: config.REDIS_TIMEOUT_MS,
    resetMs: config.REDIS_BREAKER_RESET_MS,
    probeMs: Math.max(250, config.REDIS_TIMEOUT_MS),
    onStateChange: (state) => logger.warn({ state }, 'Redis circuit breaker'),
  });
  const presence = new GatewayPresence(redis, config.KEY_PREFIX, instance, 2_000);
  presence.start();
  const limiter = new RateLimiter(hot, {
    keyPrefix: config.KEY_PREFIX,
    limits: config.RATE_LIMITS as Record<Tier, number>,
    windowS: config.RATE_LIMIT_WINDOW_S,
    fallback: config.RATE_LIMIT_FALLBACK,
    liveGateways: () => presence.count(),
  });
  const cache = new ResponseCache({
    keyPrefix: config.KEY_PREFIX,
    l1: { maxEntries: config.CACHE_L1_MAX_ENTRIES, maxBytes: config.CACHE_L1_MAX_BYTES, ttlMs: config.CACHE_L1_TTL_MS },
    staleGraceS: config.CACHE_STALE_GRACE_S,
  });

  let shuttingDown = false;
  const deps: GatewayDeps = {
    config,
    instance,
    logger,
    metrics,
    jobs,
    tokens,
    skills,
    authenticator,
    limiter,
    cache,
    redis: guard,
    pgPool: () => ({ total: pg.totalCount, idle: pg.idleCount, waiting: pg.waitingCount, max: pg.options.max ?? 10 }),
    direct: directStreams.direct(
      (skill, requestId, item, deadlineAt) => inferOnce(clients, skill, requestId, item, deadlineAt),
      (skill, requestId, item, deadlineAt, onDelta, signal) =>
        inferStreamOnce(clients, skill, requestId, item, Math.max(1, deadlineAt - Date.now()), onDelta, signal),
    ),
    directStreams,
    memory,
    isShuttingDown: () => shuttingDown,
    readiness: [
      {
        name: 'redis',
        degradesOnly: true,
        async check() {
          const problem = guard.problem();
          if (problem) throw new Error(problem);
          await redis.ping();
        },
      },
      { name: 'postgres', check: async () => void (await pg.query('select 1')) },
      {
        name: 'skills',
        async check() {
          const { live } = await skills.get();
          if (live.length === 0) throw new Error('no skill replica is registered');
          const names = [...new Set(live.map((r) => r.name))];
          const answers = await Promise.allSettled(names.map((n) => clients.pick(n).then((c) => c.check(1_000))));
          if (!answers.some((a) => a.status === 'fulfilled' && a.value === 'SERVING')) {
            throw new Error('no skill answers SERVING');
          }
        },
      },
    ],
  };

  return {
    deps,
    drain: () => {
      shuttingDown = true;
    },
    closing: [
      { name: 'presence', run: () => presence.stop() },
      { name: 'sweep', run: () => clearInterval(sweep) },
      { name: 'jobs', run: () => jobs.close() },
      { name: 'tokens', run: () => tokens.close() },
      { name: 'breaker', run: () => guard.shutdown() },
      { name: 'grpc', run: () => clients.close() },
      {
        name: 'redis',
        run: () =>
          Promise.all([closeRedis(redis), closeRedis(subscriber), closeRedis(hot), closeRedis(tokenConnection)]),
      },
      { name: 'postgres', run: () => pg.end() },
    ],
  };
}
