import type { AddressInfo } from 'node:net';
import { Authenticator } from '../auth/authenticator.js';
import { KeyStore } from '../auth/key-store.js';
import { type Config, instanceId } from '../config/index.js';
import { migrate } from '../db/migrate.js';
import { handleShutdown } from '../lib/lifecycle.js';
import { createPgPool } from '../lib/postgres.js';
import { createRedis } from '../lib/redis.js';
import { PgEntityStore } from '../memory/pg-entity-store.js';
import { createLogger } from '../observability/logger.js';
import { createRegistry } from '../observability/metrics.js';
import { JobProducer } from '../queue/producer.js';
import { SkillClientPool } from '../skills/client-pool.js';
import { CachedRegistry, SkillRegistry } from '../skills/registry.js';
import { createApp } from './app.js';

/** Role `gateway`: the only place that opens the gateway's connections and listens. */
export async function runGateway(config: Config): Promise<void> {
  const instance = instanceId(config, 'gateway', config.GATEWAY_PORT);
  const logger = createLogger({ level: config.LOG_LEVEL, role: 'gateway', instance });
  const metrics = createRegistry({ role: 'gateway', instance });

  const redis = createRedis(config.REDIS_URL, { name: 'gateway' });
  const subscriber = createRedis(config.REDIS_URL, {
    name: 'gateway-sub',
    maxRetriesPerRequest: null,
    commandTimeout: undefined,
  });
  const pg = createPgPool(config.DATABASE_URL, { name: 'skillserve-gateway', schema: config.DATABASE_SCHEMA });
  const applied = await migrate(pg, config.DATABASE_SCHEMA);
  if (applied.length > 0) logger.info({ applied }, 'migrations applied');
  const authenticator = new Authenticator({ keys: new KeyStore(pg), ttlMs: config.KEY_CACHE_TTL_MS });
  const memory = new PgEntityStore(pg);
  const jobs = new JobProducer({
    redis,
    subscriber,
    keyPrefix: config.KEY_PREFIX,
    retentionS: config.JOB_RETENTION_S,
    logger,
  });
  await jobs.start();
  const skills = new CachedRegistry(new SkillRegistry(redis, config.KEY_PREFIX), config.REGISTRY_CACHE_MS);
  const clients = new SkillClientPool(skills);

  let shuttingDown = false;
  const app = createApp({
    config,
    instance,
    logger,
    metrics,
    jobs,
    skills,
    authenticator,
    memory,
    isShuttingDown: () => shuttingDown,
    readiness: [
      { name: 'redis', check: async () => void (await redis.ping()) },
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
  });

  const server = app.listen(config.GATEWAY_PORT, config.HOST);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  // Longer than nginx's upstream keepalive_timeout, so nginx never reuses a socket we just closed.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  logger.info({ port: (server.address() as AddressInfo).port }, 'gateway listening');

  handleShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, [
    {
      name: 'http',
      run: () =>
        new Promise<void>((resolve) => {
          shuttingDown = true;
          // Stop accepting, let in-flight requests finish, then cut what is left.
          const timer = setTimeout(() => server.closeAllConnections(), config.SHUTDOWN_TIMEOUT_MS / 2);
          server.close(() => {
            clearTimeout(timer);
            resolve();
          });
          server.closeIdleConnections();
        }),
    },
    { name: 'jobs', run: () => jobs.close() },
    { name: 'grpc', run: () => clients.close() },
    { name: 'redis', run: () => Promise.allSettled([redis.quit(), subscriber.quit()]) },
    { name: 'postgres', run: () => pg.end() },
  ]);
}
