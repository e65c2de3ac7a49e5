import { type Config, instanceId } from '../config/index.js';
import { handleShutdown } from '../lib/lifecycle.js';
import { closeRedis, createRedis, redisReady } from '../lib/redis.js';
import { createLogger } from '../observability/logger.js';
import { serveAdmin } from '../observability/admin-server.js';
import { createRegistry } from '../observability/metrics.js';
import { SkillClientPool } from '../skills/client-pool.js';
import { CachedRegistry, SkillRegistry } from '../skills/registry.js';
import { createDispatcher } from './dispatcher.js';
import { registerQueueMetrics } from './queue-metrics.js';

/** Role `dispatcher`: BullMQ workers that feed the skills. */
export async function runDispatcher(config: Config): Promise<void> {
  const instance = instanceId(config, 'dispatcher');
  const logger = createLogger({ level: config.LOG_LEVEL, role: 'dispatcher', instance });
  const metrics = createRegistry({ role: 'dispatcher' });
  const redis = createRedis(config.REDIS_URL, {
    name: 'dispatcher',
    commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
  });
  const workerConnection = createRedis(config.REDIS_URL, { name: 'dispatcher-worker', blocking: true });
  await redisReady(redis, config.REDIS_URL);
  const registry = new CachedRegistry(
    new SkillRegistry(redis, config.KEY_PREFIX),
    config.REGISTRY_CACHE_MS,
    config.REDIS_TIMEOUT_MS,
  );
  const pool = new SkillClientPool(registry, { channels: config.SKILL_CLIENT_CHANNELS, ejectMs: config.SKILL_TTL_MS });
  const dispatcher = createDispatcher({ config, redis, workerConnection, registry, pool, logger, metrics });
  await dispatcher.start();
  const queueMetrics = registerQueueMetrics({ redis, registry, keyPrefix: config.KEY_PREFIX, metrics });
  let stopping = false;
  const admin = await serveAdmin(
    {
      role: 'dispatcher',
      instance,
      registry: metrics,
      readiness: [
        { name: 'redis', check: async () => void (await redis.ping()) },
        {
          name: 'workers',
          // Consuming: a running worker for every skill in the catalogue, as Redis has it now.
          async check() {
            const { catalogue } = await new SkillRegistry(redis, config.KEY_PREFIX).snapshot();
            if (catalogue.size === 0) throw new Error('no skill in the catalogue yet');
            const running = new Set(dispatcher.consuming());
            const missing = [...catalogue.keys()].filter((name) => !running.has(name));
            if (missing.length > 0) throw new Error(`no worker yet for ${missing.join(', ')}`);
          },
        },
      ],
      isShuttingDown: () => stopping,
    },
    config.HOST,
    config.METRICS_PORT,
  );
  logger.info({ adminPort: admin.port }, 'dispatcher running');

  handleShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, [
    {
      name: 'workers',
      run: () => {
        stopping = true;
        return dispatcher.close();
      },
    },
    { name: 'grpc', run: () => pool.close() },
    { name: 'queue-metrics', run: () => queueMetrics.close() },
    { name: 'admin', run: () => admin.close() },
    { name: 'redis', run: () => Promise.all([closeRedis(redis), closeRedis(workerConnection)]) },
  ]);
}
