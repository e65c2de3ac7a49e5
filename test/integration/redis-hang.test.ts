import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { http } from '../helpers/cluster.js';
import { eventually } from '../helpers/env.js';
import { type OwnRedisCluster, startOwnRedisCluster } from '../helpers/own-redis-cluster.js';
import type { OwnRedis } from '../helpers/redis-server.js';

/** The median and 99th percentile of `ms`, for the test's diagnostics (never asserted on). */
function percentiles(ms: number[]): { p50: number; p99: number; max: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99), max: s.at(-1) ?? NaN };
}

/**
 * A hung Redis (SIGSTOP): its connections stay open and nothing answers, so nothing fails fast.
 * The Redis is the test's own (never the machine's): the test freezes it under steady requests.
 */
describe('when Redis hangs', () => {
  let redis: OwnRedis;
  let cluster: OwnRedisCluster['cluster'];
  let auth: { authorization: string };
  let close: () => Promise<void>;
  const hot = Array.from({ length: 4 }, (_, i) => `A hot request, cached before Redis hung (${i}).`);
  const infer = (input: string) =>
    http(`${cluster.endpoint}/v1/skills/nlp/infer`, { json: { input, task: 'sentiment' }, headers: auth });

  before(async () => {
    // A short L1 TTL, so the stall below outlasts the in-process copies' own TTL.
    ({ redis, cluster, auth, close } = await startOwnRedisCluster({ CACHE_L1_TTL_MS: '1000' }));
  });
  after(() => close?.());

  it('keeps answering: cache hits from memory, misses straight from the skill, no 5xx', async (t) => {
    // Warm every hot key on both gateways (nginx spreads the requests).
    await eventually(async () => {
      for (const input of hot)
        for (let i = 0; i < 3; i++) assert.equal((await infer(input)).headers.get('x-cache'), 'HIT');
    });

    const results: {
      kind: 'hit' | 'miss';
      status: number;
      cache: string | null;
      degraded: string | null;
      code?: string;
      ms: number;
      at: number;
    }[] = [];
    let stop = false;
    const client = async (n: number) => {
      for (let i = 0; !stop; i++) {
        const kind = (i + n) % 2 === 0 ? 'hit' : 'miss';
        const input = kind === 'hit' ? hot[i % hot.length]! : `A new request during the stall ${randomUUID()}`;
        const t0 = performance.now();
        const res = await infer(input);
        results.push({
          kind,
          status: res.status,
          cache: res.headers.get('x-cache'),
          degraded: res.headers.get('x-degraded'),
          code: res.body?.error?.code as string | undefined,
          ms: performance.now() - t0,
          at: Date.now(),
        });
      }
    };
    const load = Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(client));
    await new Promise((r) => setTimeout(r, 500));
    const pausedAt = Date.now();
    redis.pause();
    // Longer than the L1 TTL (1 s) and the breaker's reset (2 s): hits must outlive both.
    await new Promise((r) => setTimeout(r, 4_000));
    const resumedAt = Date.now();
    redis.resume();
    await new Promise((r) => setTimeout(r, 1_000));
    stop = true;
    await load;

    const during = results.filter((r) => r.at >= pausedAt && r.at - r.ms <= resumedAt);
    for (const r of during.filter((x) => x.ms > 300))
      t.diagnostic(
        `slow: ${r.kind} ${r.status} ${r.cache} ${r.degraded} ${r.ms.toFixed(0)} ms at +${(r.at - r.ms - pausedAt).toFixed(0)} ms`,
      );
    assert.ok(during.length > 20, `${during.length} requests during the stall`);
    const failed = during.filter((r) => r.status !== 200);
    assert.deepEqual(
      failed.map(
        (r) =>
          `${r.kind}: ${r.status} ${r.code} after ${r.ms.toFixed(0)} ms at +${(r.at - r.ms - pausedAt).toFixed(0)} ms`,
      ),
      [],
      'no request failed during the stall',
    );
    // Hits are served from the gateways' memory, not recomputed, even past the L1 TTL.
    const lateHits = during.filter((r) => r.kind === 'hit' && r.at - pausedAt > 1_500);
    assert.ok(lateHits.length > 0);
    assert.deepEqual(
      lateHits.filter((r) => r.cache !== 'HIT').map((r) => r.cache),
      [],
      'cached answers are served as HIT throughout',
    );
    const { p50, p99, max } = percentiles(during.map((r) => r.ms));
    t.diagnostic(
      `stall: ${during.length} requests, p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms`,
    );

    await eventually(async () => {
      const res = await infer(`after the stall ${randomUUID()}`);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers.get('x-degraded'), null);
    });
  });
});
