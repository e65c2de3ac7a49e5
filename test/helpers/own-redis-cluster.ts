import { startTestCluster } from './cluster.js';
import { testConfig } from './env.js';
import { createKeys } from './keys.js';
import { OwnRedis } from './redis-server.js';

/** A real cluster on a Redis of the test's own (which it may kill or freeze), with a premium key. */
export interface OwnRedisCluster {
  redis: OwnRedis;
  cluster: Awaited<ReturnType<typeof startTestCluster>>;
  auth: { authorization: string };
  /** Thaws, stops and removes everything it started. */
  close(): Promise<void>;
}

/**
 * Starts the test's own Redis (the project's redis/redis.conf, AOF) and the cluster on it, with
 * rate limits out of reach and `overrides` on top. Never the machine's Redis.
 */
export async function startOwnRedisCluster(overrides: Record<string, string> = {}): Promise<OwnRedisCluster> {
  const redis = await OwnRedis.start();
  const t = await testConfig({
    REDIS_URL: redis.url,
    SKILLS: 'nlp',
    RATE_LIMITS: 'free=100000,standard=100000,premium=100000',
    ...overrides,
  });
  const close = async () => {
    redis.resume();
    await cluster?.stop();
    await redis.destroy();
    await t.cleanup();
  };
  let cluster: Awaited<ReturnType<typeof startTestCluster>> | undefined;
  try {
    cluster = await startTestCluster(t.config, t.env);
    const { auth } = await createKeys(t.config, { auth: { tenant: 'acme', tier: 'premium' } });
    return { redis, cluster, auth: auth!, close };
  } catch (err) {
    await close();
    throw err;
  }
}
