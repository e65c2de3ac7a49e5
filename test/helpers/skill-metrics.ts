import { Redis } from 'ioredis';
import { SkillClient } from '../../src/skills/client.js';
import { SkillRegistry } from '../../src/skills/registry.js';
import { REDIS_URL } from './env.js';

/** Items the live replicas of `skill` have computed, asked over gRPC GetMetrics: real model runs. */
export async function skillItemsComputed(keyPrefix: string, skill: string, redisUrl = REDIS_URL): Promise<number> {
  const redis = new Redis(redisUrl);
  try {
    const { live } = await new SkillRegistry(redis, keyPrefix).snapshot();
    let total = 0;
    for (const replica of live.filter((r) => r.name === skill)) {
      const client = new SkillClient(skill, replica.address);
      try {
        total += (await client.metrics(2_000)).itemsTotal;
      } finally {
        client.close();
      }
    }
    return total;
  } finally {
    redis.disconnect();
  }
}
