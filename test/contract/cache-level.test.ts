import { randomUUID } from 'node:crypto';
import { ResponseCache } from '../../src/cache/response-cache.js';
import { closeRedis, createRedis, redisReady } from '../../src/lib/redis.js';
import { deleteKeys, REDIS_URL } from '../helpers/env.js';
import { runCacheLevelContract } from './cache-level.contract.js';

const cacheFor = (keyPrefix: string) =>
  new ResponseCache({
    keyPrefix,
    l1: { maxEntries: 100, maxBytes: 1 << 20, ttlMs: 60_000 },
    staleGraceS: 60,
  });

async function openRedis() {
  const prefix = `test-${randomUUID()}`;
  const redis = createRedis(REDIS_URL, { name: 'test-cache' });
  await redisReady(redis, REDIS_URL);
  return {
    prefix,
    redis,
    async close() {
      await deleteKeys(prefix);
      await closeRedis(redis);
    },
  };
}

runCacheLevelContract('in-process (L1)', async () => {
  // set() writes both levels through a pipeline; never sent here, so only L1 holds the entry.
  const { prefix, redis, close } = await openRedis();
  const cache = cacheFor(prefix);
  return {
    key: (scope, hash) => cache.redisKey(scope, hash),
    entry: (value, ttlS) => cache.entry(value, ttlS),
    set: async (key, entry) => cache.set(redis.pipeline(), key, entry),
    get: async (key) => cache.getLocal(key),
    close,
  };
});

runCacheLevelContract('Redis (shared by the gateways)', async () => {
  // Written by one gateway's cache, read by another's with an empty L1: only Redis can answer.
  const { prefix, redis, close } = await openRedis();
  const writer = cacheFor(prefix);
  return {
    key: (scope, hash) => writer.redisKey(scope, hash),
    entry: (value, ttlS) => writer.entry(value, ttlS),
    async set(key, entry) {
      const pipeline = redis.pipeline();
      writer.set(pipeline, key, entry);
      await pipeline.exec();
    },
    async get(key) {
      const reader = cacheFor(prefix);
      const pipeline = redis.pipeline();
      const read = reader.add(pipeline, key);
      const [[, raw]] = (await pipeline.exec()) as [[Error | null, unknown]];
      return read(raw);
    },
    close,
  };
});
