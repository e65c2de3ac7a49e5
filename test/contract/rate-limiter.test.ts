import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { RateLimiter, type RateLimiterOptions } from '../../src/cache/rate-limiter.js';
import { closeRedis, createRedis, redisReady } from '../../src/lib/redis.js';
import { deleteKeys, REDIS_URL } from '../helpers/env.js';
import { type LimiterFactory, runRateLimiterContract } from './rate-limiter.contract.js';

/** A limiter on the machine's Redis under a prefix of its own, removed on close. */
function limiterOn(
  opts: Parameters<LimiterFactory>[0],
  extra: Partial<RateLimiterOptions> = {},
): { limiter: RateLimiter; redis: Redis; close: () => Promise<void> } {
  const prefix = `test-${randomUUID()}`;
  const redis = createRedis(REDIS_URL, { name: 'test-limiter' });
  const limiter = new RateLimiter(redis, {
    keyPrefix: prefix,
    fallback: 'local',
    liveGateways: () => 1,
    ...opts,
    ...extra,
  });
  return {
    limiter,
    redis,
    async close() {
      await deleteKeys(prefix);
      await closeRedis(redis);
    },
  };
}

runRateLimiterContract('redis (the cluster-wide bucket)', async (opts) => {
  const { limiter, redis, close } = limiterOn(opts);
  await redisReady(redis, REDIS_URL);
  return {
    async take(principal, skill) {
      const pipeline = redis.pipeline();
      const read = limiter.add(pipeline, principal, skill);
      const [[err, raw]] = (await pipeline.exec()) as [[Error | null, unknown]];
      if (err) throw err;
      return read(raw);
    },
    close,
  };
});

runRateLimiterContract('local (the fallback while Redis is down)', async (opts) => {
  const { limiter, close } = limiterOn(opts);
  return { take: async (principal, skill) => limiter.fallback(principal, skill), close };
});

describe('the local fallback alone', () => {
  const p = { keyId: 'k', tenantId: 't', tenant: 't', tier: 'standard' as const };

  it('shares the limit among the live gateways: each grants its share', async () => {
    const { limiter, close } = limiterOn(
      { limits: { free: 5, standard: 10, premium: 20 }, windowS: 60 },
      { liveGateways: () => 3 },
    );
    try {
      const decisions = Array.from({ length: 4 }, () => limiter.fallback(p, 'nlp'));
      assert.deepEqual(
        decisions.map((d) => [d.allowed, d.limit]),
        [
          [true, 3],
          [true, 3],
          [true, 3],
          [false, 3],
        ],
      );
    } finally {
      await close();
    }
  });

  it('with RATE_LIMIT_FALLBACK=closed refuses with RATE_LIMIT_UNAVAILABLE', async () => {
    const { limiter, close } = limiterOn(
      { limits: { free: 5, standard: 10, premium: 20 }, windowS: 60 },
      { fallback: 'closed' },
    );
    try {
      assert.throws(() => limiter.fallback(p, 'nlp'), { code: 'RATE_LIMIT_UNAVAILABLE' });
    } finally {
      await close();
    }
  });
});
