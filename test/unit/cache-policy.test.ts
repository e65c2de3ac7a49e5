import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cacheDecision, fresh, mayServeStale } from '../../src/cache/cache-policy.js';

const config = { CACHE_TTL_S: 300, CACHE_TTLS: { onnx: 60 }, CACHE_SHARED_SKILLS: ['onnx'] };
const request = (over: Partial<Parameters<typeof cacheDecision>[1]> = {}) => ({
  skill: { name: 'nlp', model: 'wink@1', deterministic: true },
  item: { task: 'sentiment', text: 'hello', maxTokens: 0, modelVersion: '' },
  tenantId: 'acme',
  directives: { noStore: false, noCache: false },
  ...over,
});

describe('cache policy', () => {
  it('names a deterministic request by tenant and hash, and coalesces it under the same hash', () => {
    const d = cacheDecision(config, request());
    assert.equal(d.ttlS, 300);
    assert.equal(d.entry?.scope, 'acme');
    assert.equal(d.coalesceId, `c-${d.entry?.hash}`);
    assert.notEqual(cacheDecision(config, request({ tenantId: 'other' })).entry?.hash, d.entry?.hash);
  });

  it('shares a shared skill’s entries across tenants, with its own TTL', () => {
    const onnx = { name: 'onnx', model: 'mlp@1', deterministic: true };
    const a = cacheDecision(config, request({ skill: onnx }));
    const b = cacheDecision(config, request({ skill: onnx, tenantId: 'other' }));
    assert.equal(a.entry?.scope, 'shared');
    assert.equal(a.entry?.hash, b.entry?.hash);
    assert.equal(a.ttlS, 60);
  });

  it('no-store: still coalesced, never read or stored', () => {
    const d = cacheDecision(config, request({ directives: { noStore: true, noCache: false } }));
    assert.ok(d.coalesceId);
    assert.equal(d.entry, undefined);
  });

  it('a sampling request (not deterministic, temperature ≠ 0) is neither cached nor coalesced; temperature 0 is', () => {
    const sampling = { name: 'openai', model: 'gpt@1', deterministic: false };
    const item = { task: 'chat', text: 'hi', maxTokens: 8, modelVersion: '' };
    assert.deepEqual(cacheDecision(config, request({ skill: sampling, item: { ...item, temperature: 0.7 } })), {
      ttlS: 300,
    });
    assert.ok(cacheDecision(config, request({ skill: sampling, item: { ...item, temperature: 0 } })).entry);
  });

  it('an entry answers while unexpired, unless no-cache, and within max-age', () => {
    const entry = { createdAt: 1_000, expiresAt: 10_000 };
    const none = { noStore: false, noCache: false };
    assert.equal(fresh(entry, none, 5_000), true);
    assert.equal(fresh(entry, none, 10_000), false);
    assert.equal(fresh(entry, { ...none, noCache: true }, 5_000), false);
    assert.equal(fresh(entry, { ...none, maxAgeS: 2 }, 3_000), true);
    assert.equal(fresh(entry, { ...none, maxAgeS: 2 }, 3_001), false);
    assert.equal(fresh(undefined, none, 0), false);
  });

  it('serves stale only for outages and deadlines, and only without a freshness bound', () => {
    const none = { noStore: false, noCache: false };
    assert.equal(mayServeStale(none, 'SKILL_UNAVAILABLE'), true);
    assert.equal(mayServeStale(none, 'DEADLINE_EXCEEDED'), true);
    assert.equal(mayServeStale(none, 'BAD_REQUEST'), false);
    assert.equal(mayServeStale(none, undefined), false);
    assert.equal(mayServeStale({ ...none, noCache: true }, 'SKILL_UNAVAILABLE'), false);
    assert.equal(mayServeStale({ ...none, maxAgeS: 5 }, 'SKILL_UNAVAILABLE'), false);
  });
});
