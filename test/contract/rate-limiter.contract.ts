import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { Principal, Tier } from '../../src/auth/key-store.js';
import type { LimitDecision } from '../../src/cache/token-bucket.js';

/**
 * What a rate limit must decide, whichever bucket decides it: the cluster's (one Lua script in
 * Redis) or a gateway's own while Redis is down (src/cache/rate-limiter.ts). Clients see the same
 * headers and the same refusals from both, so both run this one suite.
 */
export interface LimiterUnderTest {
  /** One request of `principal` to `skill`, decided. */
  take(principal: Principal, skill: string): Promise<LimitDecision>;
  close(): Promise<void>;
}

export type LimiterFactory = (opts: { limits: Record<Tier, number>; windowS: number }) => Promise<LimiterUnderTest>;

const LIMITS = { free: 5, standard: 10, premium: 20 };
let keys = 0;
const principal = (tier: Tier = 'free'): Principal => ({
  keyId: `key-${process.pid}-${++keys}`,
  tenantId: 't',
  tenant: 't',
  tier,
});

async function drain(l: LimiterUnderTest, p: Principal, skill: string, n: number): Promise<LimitDecision[]> {
  const out: LimitDecision[] = [];
  for (let i = 0; i < n; i++) out.push(await l.take(p, skill));
  return out;
}

export function runRateLimiterContract(name: string, factory: LimiterFactory): void {
  describe(`rate limiter contract: ${name}`, () => {
    let limiter: LimiterUnderTest;
    before(async () => {
      // A minute's window: nothing refills noticeably while a test runs.
      limiter = await factory({ limits: LIMITS, windowS: 60 });
    });
    after(() => limiter?.close());

    it("grants the tier's limit, counting down, then refuses with a Retry-After", async () => {
      const p = principal('free');
      const decisions = await drain(limiter, p, 'nlp', 6);
      assert.deepEqual(
        decisions.map((d) => [d.allowed, d.limit, d.remaining]),
        [...[4, 3, 2, 1, 0].map((r) => [true, 5, r]), [false, 5, 0]],
      );
      for (const d of decisions.slice(0, 5)) assert.equal(d.retryAfterS, 0);
      // One token comes back every window ÷ limit = 12 s.
      const refused = decisions[5]!;
      assert.ok(refused.retryAfterS >= 11 && refused.retryAfterS <= 12, String(refused.retryAfterS));
      // RateLimit-Reset: until the bucket is full again, growing as it empties, never past the window.
      const resets = decisions.map((d) => d.resetS);
      assert.ok(
        resets.every((r, i) => r > 0 && r <= 60 && (i === 0 || r >= resets[i - 1]!)),
        String(resets),
      );
    });

    it('sizes the bucket by tier', async () => {
      const premium = await drain(limiter, principal('premium'), 'nlp', 21);
      assert.equal(premium.filter((d) => d.allowed).length, 20);
      assert.equal(premium[0]!.limit, 20);
    });

    it('keeps one bucket per key and skill', async () => {
      const p = principal();
      await drain(limiter, p, 'nlp', 5);
      assert.equal((await limiter.take(p, 'nlp')).allowed, false);
      assert.equal((await limiter.take(p, 'onnx')).allowed, true, 'another skill');
      assert.equal((await limiter.take(principal(), 'nlp')).allowed, true, 'another key');
    });

    it('refills at limit per window', async () => {
      // 5 per second: a token every 200 ms.
      const fast = await factory({ limits: LIMITS, windowS: 1 });
      try {
        const p = principal();
        await drain(fast, p, 'nlp', 5);
        assert.equal((await fast.take(p, 'nlp')).allowed, false);
        await sleep(450);
        // At least 450 ms passed: at least 2 tokens back, never more than the bucket holds.
        const back = (await drain(fast, p, 'nlp', 8)).filter((d) => d.allowed).length;
        assert.ok(back >= 2 && back <= 5, String(back));
      } finally {
        await fast.close();
      }
    });
  });
}
