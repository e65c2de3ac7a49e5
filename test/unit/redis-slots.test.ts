import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import type { Principal } from '../../src/auth/key-store.js';
import { RateLimiter } from '../../src/cache/rate-limiter.js';
import { ResponseCache } from '../../src/cache/response-cache.js';
import { queuePrefix } from '../../src/queue/job.js';
import { tokenStreamKeys } from '../../src/queue/token-stream.js';
import { registryKeys } from '../../src/skills/registry.js';
import { Redis } from 'ioredis';

/** Redis Cluster's own slot function (CRC16 of the key, or of its first non-empty `{tag}`). */
const slotOf = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;
const PREFIX = 'skillserve';

function oneSlot(keys: string[], what: string): number {
  const slots = new Set(keys.map(slotOf));
  assert.equal(slots.size, 1, `${what}: keys ${keys.join(', ')} span slots ${[...slots].join(', ')}`);
  return [...slots][0]!;
}

describe('every multi-key Redis command stays in one cluster slot', () => {
  it("each skill's BullMQ queue (every key its scripts take, and its jobs') is in one slot, queues spread", async () => {
    const slots = new Set<number>();
    for (const skill of ['nlp', 'onnx', 'openai', 'a-much-longer-skill-name']) {
      // The Queue only names its keys here; its connection never connects.
      const connection = new Redis({ lazyConnect: true });
      const queue = new Queue(skill, { prefix: queuePrefix(PREFIX, skill), connection });
      try {
        const keys = [...Object.values(queue.keys), queue.toKey('c-0123abcd'), queue.toKey('9f0c-uuid')];
        assert.ok(
          keys.every((k) => k.startsWith(`${PREFIX}:`)),
          'every key under KEY_PREFIX (tests delete by it)',
        );
        slots.add(oneSlot(keys, `queue ${skill}`));
      } finally {
        await queue.close();
        connection.disconnect();
      }
    }
    assert.ok(slots.size > 1, 'one hash tag per queue, so queues can live on different masters');
  });

  it("a streamed job's token stream, owner and readers keys share a slot", () => {
    const { stream, owner, readers } = tokenStreamKeys(PREFIX, 'c-0123abcd');
    oneSlot([stream, owner, readers], 'token stream');
  });

  it("the registry's catalogue and live hashes (one MULTI) share a slot", () => {
    const { catalogue, live } = registryKeys(PREFIX);
    oneSlot([catalogue, live], 'registry');
  });

  it('a cache entry and its refresh marker share a slot; entries spread by hash', () => {
    const cache = new ResponseCache({
      keyPrefix: PREFIX,
      l1: { maxEntries: 1, maxBytes: 1_000, ttlMs: 1 },
      staleGraceS: 0,
    });
    const slots = new Set<number>();
    for (const hash of ['00ff', 'abcdef0123456789', '1234']) {
      const key = cache.redisKey('shared', hash);
      slots.add(oneSlot([key, `${key}:refreshing`], 'cache entry'));
      assert.equal(slotOf(cache.redisKey('tenant-7', hash)), slotOf(key), 'the slot follows the hash');
    }
    assert.ok(slots.size > 1);
  });

  it("a rate-limit bucket's key is hash-tagged per key and skill", () => {
    const fake = { defineCommand: () => undefined } as unknown as Redis;
    const limiter = new RateLimiter(fake, {
      keyPrefix: PREFIX,
      limits: { free: 1, standard: 1, premium: 1 },
      windowS: 60,
      fallback: 'local',
      liveGateways: () => 1,
    });
    const key = limiter.bucketKey({ keyId: 'k-1', tier: 'free' } as Principal, 'nlp');
    assert.match(key, /\{rl:k-1:nlp\}/);
    assert.notEqual(slotOf(key), slotOf(limiter.bucketKey({ keyId: 'k-2', tier: 'free' } as Principal, 'nlp')));
  });

  it('no code outside the audited places sends a script, MULTI or multi-key command', () => {
    // Each of these was checked for its keys above (or takes one key only); a new one must be too.
    const audited: Record<string, string> = {
      'src/skills/registry.ts': 'MULTI on the registry keys; the sweep script takes the live key only',
      'src/gateway/presence.ts': 'MULTI on one key',
      'src/queue/producer.ts': 'HMGET on one job hash',
      'src/cache/rate-limiter.ts': 'the token-bucket script takes one key',
      'src/lib/redis-scan.ts': 'UNLINK of many keys on one Redis only; one key each in a cluster',
      'src/queue/token-reader.ts':
        'MULTI on one key (readers); XREAD of many streams on one Redis only, one stream per XREAD on a cluster',
      'src/lib/cluster-batch.ts': 'pipelines: on a cluster, one command per key instead (pipelineFor)',
    };
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const found = new Set<string>();
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, e.name);
        if (e.isDirectory()) walk(path);
        else if (path.endsWith('.ts')) {
          const text = readFileSync(path, 'utf8');
          if (
            /\.(multi|pipeline|eval|evalsha|mget|hmget|mset|unlink|del|rename|sunionstore|zunionstore|xread)\(|defineCommand\(/.test(
              text,
            )
          )
            found.add(relative(root, path));
        }
      }
    };
    walk(join(root, 'src'));
    assert.deepEqual([...found].sort(), Object.keys(audited).sort());
  });
});
