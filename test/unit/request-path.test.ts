import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Queue } from 'bullmq';
import { parseCacheControl } from '../../src/cache/cache-control.js';
import { cacheKeyHash, canonicalJson } from '../../src/cache/cache-key.js';
import { LocalTokenBucket } from '../../src/cache/token-bucket.js';
import { type AppError } from '../../src/errors/index.js';
import { Backpressure } from '../../src/queue/backpressure.js';
import { defaultPriorityPolicy, MAX_PRIORITY, priorityFor } from '../../src/queue/priority.js';

describe('token bucket (in process, as the Redis script)', () => {
  it('allows up to its capacity at once, then refuses with a Retry-After', () => {
    const b = new LocalTokenBucket(3, 1, 0);
    for (let i = 0; i < 3; i++) assert.equal(b.take(0).allowed, true);
    const refused = b.take(0);
    assert.equal(refused.allowed, false);
    assert.equal(refused.remaining, 0);
    assert.equal(refused.retryAfterS, 1);
    assert.equal(refused.resetS, 3);
  });

  it('refills at its rate, never above its capacity', () => {
    const b = new LocalTokenBucket(2, 10, 0);
    b.take(0);
    b.take(0);
    assert.equal(b.take(0).allowed, false);
    assert.equal(b.take(100).allowed, true, 'one token after 100 ms at 10/s');
    assert.equal(b.take(60_000).remaining, 1, 'full (2) after a minute, minus this one');
  });
});

describe('cache key', () => {
  const parts = {
    skill: 'nlp',
    model: 'm@1',
    task: 'sentiment',
    text: 'café',
    parameters: { maxTokens: 0, modelVersion: '' },
    scope: 'acme',
  };

  it('is canonical: key order does not matter, undefined members are dropped', () => {
    assert.equal(canonicalJson({ b: 1, a: [1, { d: 2, c: undefined }] }), '{"a":[1,{"d":2}],"b":1}');
    assert.equal(
      cacheKeyHash(parts),
      cacheKeyHash({ ...parts, parameters: { modelVersion: '', maxTokens: 0, temperature: undefined } }),
    );
  });

  it('treats canonically equivalent text alike, and anything that changes the answer apart', () => {
    assert.equal(cacheKeyHash(parts), cacheKeyHash({ ...parts, text: 'cafe\u0301' }));
    for (const other of [
      { text: 'Café' },
      { model: 'm@2' },
      { task: 'tokens' },
      { scope: 'other-tenant' },
      { parameters: { maxTokens: 1, modelVersion: '' } },
    ])
      assert.notEqual(cacheKeyHash(parts), cacheKeyHash({ ...parts, ...other }), JSON.stringify(other));
  });
});

describe('Cache-Control', () => {
  it('reads no-store, no-cache and max-age, case-insensitively, ignoring the unknown', () => {
    assert.deepEqual(parseCacheControl(undefined), { noStore: false, noCache: false });
    assert.deepEqual(parseCacheControl('No-Cache, max-age="30", private'), {
      noStore: false,
      noCache: true,
      maxAgeS: 30,
    });
    assert.deepEqual(parseCacheControl('no-store'), { noStore: true, noCache: false });
  });

  it('ignores a max-age that is not a non-negative integer', () => {
    for (const bad of ['max-age=-1', 'max-age=1.5', 'max-age=soon', 'max-age'])
      assert.equal(parseCacheControl(bad).maxAgeS, undefined, bad);
  });
});

describe('backpressure', () => {
  const queueWithDepth = (depth: number) => ({
    getJobCounts: async () => ({ waiting: depth, prioritized: 0, delayed: 0 }),
  });

  it('admits below the depth limit and refuses at it, with a Retry-After from the throughput', async () => {
    const bp = new Backpressure(() => 10);
    await bp.admit('nlp', queueWithDepth(9) as unknown as Queue);
    const full = new Backpressure(() => 10);
    let t = 0;
    for (let i = 0; i < 20; i++) full.completed('nlp', (t += 100));
    full.completed('nlp', (t += 2_000));
    await assert.rejects(full.admit('nlp', queueWithDepth(40) as unknown as Queue), (err: AppError) => {
      assert.equal(err.code, 'OVERLOADED');
      assert.ok((err.retryAfterS ?? 0) >= 1 && (err.retryAfterS ?? 0) <= 60);
      return true;
    });
  });

  it('calls a queue idle only when it last read no job waiting', async () => {
    const bp = new Backpressure(() => 10);
    assert.equal(bp.idle('nlp', queueWithDepth(3) as unknown as Queue), true, 'nothing read yet');
    await bp.admit('nlp', queueWithDepth(3) as unknown as Queue).catch(() => undefined);
    assert.equal(bp.idle('nlp', queueWithDepth(3) as unknown as Queue), false);
  });
});

describe('priority', () => {
  const at = (ms: number) => ({ tenantBacklog: 0, now: ms });

  it('orders by virtual enqueue time: the tier delay, then the tenant backlog', () => {
    const t = 1_000_000;
    assert.ok(priorityFor({ tier: 'premium', ...at(t) }) < priorityFor({ tier: 'standard', ...at(t) }));
    assert.ok(priorityFor({ tier: 'standard', ...at(t) }) < priorityFor({ tier: 'free', ...at(t) }));
    const flooding = priorityFor({ tier: 'premium', tenantBacklog: 500, now: t });
    assert.ok(flooding > priorityFor({ tier: 'standard', ...at(t) }), '500 jobs × 20 ms is more than the 1 s gap');
  });

  it('ages: free work that waited longer than the gap goes before new premium work', () => {
    const gap = defaultPriorityPolicy.tierDelayMs.free;
    assert.ok(priorityFor({ tier: 'free', ...at(1_000) }) < priorityFor({ tier: 'premium', ...at(1_000 + gap + 100) }));
  });

  it('stays within BullMQ’s range', () => {
    assert.ok(priorityFor({ tier: 'premium', ...at(0) }) >= 1);
    assert.ok(priorityFor({ tier: 'free', tenantBacklog: 1e9, now: 86_399_999 }) <= MAX_PRIORITY);
  });
});
