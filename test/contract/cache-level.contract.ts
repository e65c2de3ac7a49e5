import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { CacheEntry } from '../../src/cache/response-cache.js';

/**
 * What each level of the response cache must do (src/cache/response-cache.ts): the in-process LRU
 * and the shared Redis level hold the same entries under the same keys, so a request answered
 * from either gets the same answer, and neither ever hands out an expired entry as fresh.
 */
export interface CacheLevelUnderTest {
  /** `<prefix>:cache:<scope>:{<hash>}`: the key the gateway would use. */
  key(scope: string, hash: string): string;
  /** An entry fresh for `ttlS` from now. */
  entry<T>(value: T, ttlS: number): CacheEntry<T>;
  set(key: string, entry: CacheEntry): Promise<void>;
  /** What this level returns for `key`, read on its own. */
  get(key: string): Promise<CacheEntry | undefined>;
  close(): Promise<void>;
}

export function runCacheLevelContract(name: string, factory: () => Promise<CacheLevelUnderTest>): void {
  describe(`response cache level contract: ${name}`, () => {
    let level: CacheLevelUnderTest;
    before(async () => {
      level = await factory();
    });
    after(() => level?.close());

    it('returns the entry stored under a key, unchanged, and nothing under another', async () => {
      const key = level.key('tenant-a', 'h1');
      const entry = level.entry({ output: { label: 'positive', score: 0.6 } }, 60);
      await level.set(key, entry);
      assert.deepEqual(await level.get(key), entry);
      assert.equal(await level.get(level.key('tenant-a', 'h2')), undefined);
    });

    it("keeps tenants apart: one scope's entry is not another's", async () => {
      assert.notEqual(level.key('tenant-a', 'same'), level.key('tenant-b', 'same'));
      await level.set(level.key('tenant-a', 'same'), level.entry('for a', 60));
      assert.equal(await level.get(level.key('tenant-b', 'same')), undefined);
    });

    it('a newer entry replaces the older', async () => {
      const key = level.key('shared', 'replaced');
      await level.set(key, level.entry('old', 60));
      const fresh = level.entry('new', 60);
      await level.set(key, fresh);
      assert.deepEqual(await level.get(key), fresh);
    });

    it('never returns an expired entry as fresh: absent, or with its expiry in the past (for STALE)', async () => {
      const key = level.key('shared', 'expiring');
      await level.set(key, level.entry('short-lived', 0.05));
      await sleep(120);
      const got = await level.get(key);
      if (got) {
        assert.equal(got.value, 'short-lived');
        assert.ok(got.expiresAt <= Date.now(), 'marked expired');
      }
    });
  });
}
