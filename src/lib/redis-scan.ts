import type { Cluster, Redis } from 'ioredis';
import type { RedisClient } from './redis.js';

/**
 * The servers that hold the keys: the one Redis, or each master of a Redis Cluster (SCAN walks
 * one server's keys only, so listing a cluster's keys means asking every master).
 */
export function keyHolders(redis: RedisClient): Redis[] {
  return redis.isCluster ? (redis as Cluster).nodes('master') : [redis as Redis];
}

/**
 * Removes every key matching `pattern` (a SCAN MATCH pattern); returns how many. In a cluster each
 * key is unlinked on its own, since one UNLINK of many keys must stay within a slot.
 */
export async function deleteMatching(redis: RedisClient, pattern: string): Promise<number> {
  let removed = 0;
  for (const node of keyHolders(redis)) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (found.length === 0) continue;
      if (!redis.isCluster) removed += await redis.unlink(...found);
      else for (const n of await Promise.all(found.map((k) => redis.unlink(k)))) removed += n;
    } while (cursor !== '0');
  }
  return removed;
}
