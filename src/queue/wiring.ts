import type { Registry } from 'prom-client';
import type { Config } from '../config/index.js';
import type { ShutdownStep } from '../lib/lifecycle.js';
import { closeRedis, describeRedis, openRedis, type RedisClient, redisReady } from '../lib/redis.js';
import type { Logger } from '../observability/logger.js';
import { CachedRegistry, SkillRegistry } from '../skills/registry.js';
import { createSkillPool } from '../skills/skill-pool.js';
import { createDispatcher, type Dispatcher } from './dispatcher.js';

export interface OpenDispatcher {
  dispatcher: Dispatcher;
  /** The dispatcher's own Redis connection (not the workers' blocking one). */
  redis: RedisClient;
  registry: CachedRegistry;
  /** Closing steps, in order. */
  closing: ShutdownStep[];
}

/**
 * Opens a dispatcher: its Redis connections, the registry it reads, the gRPC client pool, and
 * the BullMQ workers, started. The role's main and the tests open dispatchers with this one
 * function, as `openGateway` does for gateways.
 */
export async function openDispatcher(
  config: Config,
  { logger, metrics }: { logger: Logger; metrics: Registry },
): Promise<OpenDispatcher> {
  const redis = openRedis(config, {
    name: 'dispatcher',
    commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
  });
  const workerConnection = openRedis(config, { name: 'dispatcher-worker', blocking: true });
  await redisReady(redis, describeRedis(config));
  const registry = new CachedRegistry(
    new SkillRegistry(redis, config.KEY_PREFIX),
    config.REGISTRY_CACHE_MS,
    config.REDIS_TIMEOUT_MS,
  );
  const pool = createSkillPool({ config, registry, logger, metrics });
  const dispatcher = createDispatcher({ config, redis, workerConnection, registry, pool, logger, metrics });
  await dispatcher.start();
  return {
    dispatcher,
    redis,
    registry,
    closing: [
      { name: 'workers', run: () => dispatcher.close() },
      { name: 'grpc', run: () => pool.close() },
      { name: 'redis', run: () => Promise.all([closeRedis(redis), closeRedis(workerConnection)]) },
    ],
  };
}
