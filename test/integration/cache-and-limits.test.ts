import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { Config } from '../../src/config/index.js';
import { adminUrls, http, startTestCluster } from '../helpers/cluster.js';
import { eventually, REDIS_URL, testConfig } from '../helpers/env.js';
import { createKeys } from '../helpers/keys.js';
import { sumMetric } from '../helpers/metrics.js';

describe('shared response cache and cluster-wide rate limits, through nginx', () => {
  let cluster: Awaited<ReturnType<typeof startTestCluster>>;
  let config: Config;
  let cleanup: () => Promise<void>;
  let keys: Record<string, { authorization: string }>;
  let gatewayMetrics: string[];

  const infer = (key: { authorization: string }, input: string, headers: Record<string, string> = {}) =>
    http(`${cluster.endpoint}/v1/skills/nlp/infer`, {
      json: { input, task: 'sentiment' },
      headers: { ...key, ...headers },
    });
  const unique = () => `A calm and pleasant afternoon ${randomUUID()}`;

  before(async () => {
    const t = await testConfig({
      RATE_LIMITS: 'free=8,standard=100000,premium=100000',
      RATE_LIMIT_WINDOW_S: '3600',
      CACHE_TTLS: 'nlp=2',
      CACHE_L1_TTL_MS: '300',
    });
    config = t.config;
    cleanup = t.cleanup;
    cluster = await startTestCluster(t.config, t.env);
    keys = await createKeys(config, {
      acme: { tenant: 'acme', tier: 'standard' },
      globex: { tenant: 'globex', tier: 'standard' },
      freebie: { tenant: 'acme', tier: 'free' },
      scripts: { tenant: 'acme', tier: 'free' },
    });
    gatewayMetrics = (await adminUrls(cluster, 'gateway')).map((u) => `${u}/metrics`);
  });

  after(async () => {
    await cluster?.stop();
    await cleanup?.();
  });

  it('MISS, then HIT with the same answer and an Age', async () => {
    const input = unique();
    const first = await infer(keys.acme!, input);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers.get('x-cache'), 'MISS');
    const second = await infer(keys.acme!, input);
    assert.equal(second.headers.get('x-cache'), 'HIT');
    assert.deepEqual(second.body.output, first.body.output);
    assert.equal(second.body.model, first.body.model);
    assert.ok(Number(second.headers.get('age')) >= 0);
  });

  it('is scoped to the tenant: another tenant does not read it', async () => {
    const input = unique();
    assert.equal((await infer(keys.acme!, input)).headers.get('x-cache'), 'MISS');
    assert.equal((await infer(keys.globex!, input)).headers.get('x-cache'), 'MISS');
    assert.equal((await infer(keys.globex!, input)).headers.get('x-cache'), 'HIT');
  });

  it('honours no-cache, no-store and max-age', async () => {
    const input = unique();
    assert.equal((await infer(keys.acme!, input, { 'cache-control': 'no-store' })).headers.get('x-cache'), 'BYPASS');
    assert.equal((await infer(keys.acme!, input)).headers.get('x-cache'), 'MISS', 'no-store wrote nothing');
    assert.equal((await infer(keys.acme!, input, { 'cache-control': 'no-cache' })).headers.get('x-cache'), 'MISS');
    assert.equal((await infer(keys.acme!, input)).headers.get('x-cache'), 'HIT');
    assert.equal((await infer(keys.acme!, input, { 'cache-control': 'max-age=0' })).headers.get('x-cache'), 'MISS');
    assert.equal((await infer(keys.acme!, input, { 'cache-control': 'max-age=60' })).headers.get('x-cache'), 'HIT');
  });

  it('makes one Redis round trip per cache-hit request', async () => {
    const input = unique();
    await infer(keys.acme!, input);
    await eventually(async () => assert.equal((await infer(keys.acme!, input)).headers.get('x-cache'), 'HIT'));
    const before = await sumMetric(gatewayMetrics, 'skillserve_redis_round_trips_total');
    const n = 20;
    for (let i = 0; i < n; i++) assert.equal((await infer(keys.acme!, input)).headers.get('x-cache'), 'HIT');
    const after = await sumMetric(gatewayMetrics, 'skillserve_redis_round_trips_total');
    assert.equal(after - before, n);
  });

  it('holds the per-key limit for the cluster, not per gateway', async () => {
    const statuses: number[] = [];
    const servedBy = new Set<string>();
    let refused: Awaited<ReturnType<typeof infer>> | undefined;
    for (let i = 0; i < 16; i++) {
      const res = await infer(keys.freebie!, unique(), { 'cache-control': 'no-store' });
      statuses.push(res.status);
      servedBy.add(res.headers.get('x-served-by') ?? '');
      assert.equal(res.headers.get('ratelimit-limit'), '8');
      if (res.status === 429) refused = res;
    }
    assert.equal(servedBy.size, 2, 'both gateways took part');
    assert.equal(statuses.filter((s) => s === 200).length, 8, statuses.join(','));
    assert.equal(statuses.filter((s) => s === 429).length, 8, statuses.join(','));
    assert.ok(refused);
    assert.equal(refused.body.error.code, 'RATE_LIMITED');
    assert.equal(refused.headers.get('ratelimit-remaining'), '0');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.ok(Number(refused.headers.get('ratelimit-reset')) >= 1);
  });

  it('keeps limiting after SCRIPT FLUSH (NOSCRIPT is reloaded)', async () => {
    const redis = new Redis(REDIS_URL);
    try {
      await redis.script('FLUSH');
    } finally {
      redis.disconnect();
    }
    const remaining: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await infer(keys.scripts!, unique(), { 'cache-control': 'no-store' });
      assert.equal(res.status, 200, res.text);
      remaining.push(Number(res.headers.get('ratelimit-remaining')));
    }
    assert.deepEqual(remaining, [7, 6, 5, 4]);
  });

  it('serves a STALE answer when the entry expired and the skill cannot answer', async () => {
    const input = unique();
    const fresh = await infer(keys.acme!, input);
    assert.equal(fresh.headers.get('x-cache'), 'MISS');
    await new Promise((r) => setTimeout(r, 2_200)); // CACHE_TTLS nlp=2
    const skill = cluster.processes.find((p) => p.spec.name === 'skill-nlp')!;
    await skill.stop(5_000);
    try {
      const stale = await infer(keys.acme!, input);
      assert.equal(stale.status, 200, stale.text);
      assert.equal(stale.headers.get('x-cache'), 'STALE');
      assert.deepEqual(stale.body.output, fresh.body.output);
      assert.ok(Number(stale.headers.get('age')) >= 2);
      const none = await infer(keys.acme!, unique());
      assert.equal(none.status, 503, 'no entry, no skill: a clear 503');
      assert.ok((await sumMetric(gatewayMetrics, 'skillserve_cache_requests_total', 'result="stale"')) >= 1);
    } finally {
      skill.start();
      await eventually(async () => assert.equal((await infer(keys.acme!, unique())).status, 200), {
        timeoutMs: 30_000,
      });
    }
  });
});
