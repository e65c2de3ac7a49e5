import { type Config, instanceId } from '../config/index.js';
import { handleShutdown } from '../lib/lifecycle.js';
import { closeRedis, createRedis, redisReady } from '../lib/redis.js';
import { createLogger } from '../observability/logger.js';
import { createRegistry, serveMetrics } from '../observability/metrics.js';
import { SkillClientPool } from '../skills/client-pool.js';
import { CachedRegistry, SkillRegistry } from '../skills/registry.js';
import { createDispatcher } from './dispatcher.js';

/** Role `dispatcher`: BullMQ workers that feed the skills. */
export async function runDispatcher(config: Config): Promise<void> {
  const instance = instanceId(config, 'dispatcher');
  const logger = createLogger({ level: config.LOG_LEVEL, role: 'dispatcher', instance });
  const metrics = createRegistry({ role: 'dispatcher', instance });
  const redis = createRedis(config.REDIS_URL, { name: 'dispatcher' });
  const workerConnection = createRedis(config.REDIS_URL, { name: 'dispatcher-worker', blocking: true });
  await redisReady(redis, config.REDIS_URL);
  const registry = new CachedRegistry(new SkillRegistry(redis, config.KEY_PREFIX), config.REGISTRY_CACHE_MS);
  const pool = new SkillClientPool(registry, { channels: config.SKILL_CLIENT_CHANNELS, ejectMs: config.SKILL_TTL_MS });
  const dispatcher = createDispatcher({ config, redis, workerConnection, registry, pool, logger, metrics });
  const metricsServer = await serveMetrics(metrics, config.HOST, config.METRICS_PORT);
  await dispatcher.start();
  logger.info({ metricsPort: metricsServer.port }, 'dispatcher running');

  handleShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, [
    { name: 'workers', run: () => dispatcher.close() },
    { name: 'grpc', run: () => pool.close() },
    { name: 'metrics', run: () => new Promise((r) => metricsServer.server.close(r)) },
    { name: 'redis', run: () => Promise.all([closeRedis(redis), closeRedis(workerConnection)]) },
  ]);
}
