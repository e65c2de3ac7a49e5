import { once } from 'node:events';
import { Redis, type RedisOptions } from 'ioredis';
import { redactUrl } from '../config/index.js';

/**
 * A Redis connection with bounded connect and command times, so no caller hangs on a dead
 * Redis. Command connections fail at once while disconnected (no offline queue: BullMQ's advice
 * for producers, and what lets the gateway degrade instead of wait). `blocking` connections
 * (BullMQ workers, subscribers) queue while reconnecting and never give up.
 */
export function createRedis(url: string, opts: { name: string; blocking?: boolean } & RedisOptions): Redis {
  const { name, blocking, ...rest } = opts;
  const redis = new Redis(url, {
    connectionName: name,
    connectTimeout: 2_000,
    ...(blocking
      ? { maxRetriesPerRequest: null, enableReadyCheck: true }
      : { maxRetriesPerRequest: 1, commandTimeout: 2_000, enableOfflineQueue: false }),
    retryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 2_000),
    ...rest,
  });
  // Connection errors surface where it matters (the command that fails, the breaker, /readyz);
  // without a listener ioredis would print every reconnect attempt to stderr.
  redis.on('error', () => undefined);
  return redis;
}

/** Resolves once `redis` is ready; start-up fails with a clear message if it is not within `timeoutMs`. */
export async function redisReady(redis: Redis, url: string, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return;
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    await once(redis, 'ready', { signal: ac.signal });
  } catch {
    throw new Error(`Redis at ${redactUrl(url)} is not reachable (waited ${timeoutMs} ms)`);
  } finally {
    clearTimeout(timer);
  }
}

/** Closes politely when connected (QUIT lets replies drain), at once otherwise: never waits on a dead Redis. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'ready') {
    await redis.quit().catch(() => redis.disconnect());
  } else {
    redis.disconnect();
  }
}
