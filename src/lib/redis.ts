import { Redis, type RedisOptions } from 'ioredis';

/**
 * A Redis connection with bounded connect and command times, so no caller hangs on a dead
 * Redis. `blocking` connections (BullMQ workers) must not time out commands or give up retrying.
 */
export function createRedis(url: string, opts: { name: string; blocking?: boolean } & RedisOptions): Redis {
  const { name, blocking, ...rest } = opts;
  return new Redis(url, {
    connectionName: name,
    connectTimeout: 2_000,
    lazyConnect: false,
    ...(blocking
      ? { maxRetriesPerRequest: null, enableReadyCheck: true }
      : { maxRetriesPerRequest: 1, commandTimeout: 2_000 }),
    retryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 2_000),
    ...rest,
  });
}
