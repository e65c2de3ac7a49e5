import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { adminUrls, http, startTestCluster } from '../helpers/cluster.js';
import { eventually, testConfig } from '../helpers/env.js';
import { createKeys } from '../helpers/keys.js';
import { sumMetric } from '../helpers/metrics.js';
import { OwnRedis } from '../helpers/redis-server.js';

describe('when Redis dies and comes back', () => {
  let redis: OwnRedis;
  let cluster: Awaited<ReturnType<typeof startTestCluster>>;
  let cleanup: () => Promise<void>;
  let key: { authorization: string };
  let gatewayMetrics: string[];

  const infer = (input: string, headers: Record<string, string> = {}) =>
    http(`${cluster.endpoint}/v1/skills/nlp/infer`, { json: { input }, headers: { ...key, ...headers } });

  before(async () => {
    redis = await OwnRedis.start();
    const t = await testConfig({
      REDIS_URL: redis.url,
      CACHE_L1_TTL_MS: '60000',
      RATE_LIMITS: 'free=100,standard=6,premium=100000',
      RATE_LIMIT_WINDOW_S: '3600',
      REDIS_BREAKER_RESET_MS: '500',
    });
    cleanup = t.cleanup;
    cluster = await startTestCluster(t.config, t.env);
    ({ key } = (await createKeys(t.config, { key: { tenant: 'acme', tier: 'premium' } })) as {
      key: { authorization: string };
    });
    gatewayMetrics = (await adminUrls(cluster, 'gateway')).map((u) => `${u}/metrics`);
  });

  after(async () => {
    await cluster?.stop();
    await redis?.destroy();
    await cleanup?.();
  });

  it('keeps answering — L1 hits, direct skill calls, local limits — and says it is degraded', async () => {
    const hot = 'A hot key, cached before Redis went away.';
    // Warm the key on both gateways' L1.
    await eventually(async () => {
      for (let i = 0; i < 4; i++) assert.equal((await infer(hot)).headers.get('x-cache'), 'HIT');
    });

    await redis.stop();

    const fresh = await infer(`Computed while Redis is down ${randomUUID()}`);
    assert.equal(fresh.status, 200, fresh.text);
    assert.equal(fresh.headers.get('x-degraded'), 'redis');
    assert.equal(typeof fresh.body.output.score, 'number', 'a real model answer, straight from the skill');

    const cached = await infer(hot);
    assert.equal(cached.status, 200, cached.text);
    assert.equal(cached.headers.get('x-cache'), 'HIT', 'the in-process level still serves');

    const ready = await http(`${cluster.endpoint}/readyz`);
    assert.equal(ready.status, 200, 'a degraded gateway still takes traffic');
    assert.deepEqual(ready.body, { status: 'degraded' }, 'the public port says no more than that');
    const [admin] = await adminUrls(cluster, 'gateway');
    const detail = await http(`${admin}/readyz`);
    assert.equal(detail.status, 200, detail.text);
    assert.deepEqual(detail.body.degraded, ['redis']);
    assert.notEqual(detail.body.checks.redis, 'ok');

    // Each gateway's Redis breaker reads open (1) or half-open (2) while Redis is out.
    assert.ok((await sumMetric(gatewayMetrics, 'skillserve_breaker_state')) >= 2);
    assert.ok((await sumMetric(gatewayMetrics, 'skillserve_degraded_requests_total', 'reason="redis"')) >= 1);
    assert.ok((await sumMetric(gatewayMetrics, 'skillserve_rate_limit_decisions_total', 'source="local"')) >= 1);
  });

  it('recovers by itself when Redis is back', async () => {
    await redis.start();
    await eventually(
      async () => {
        const res = await infer(`After the restart ${randomUUID()}`);
        assert.equal(res.status, 200, res.text);
        assert.equal(res.headers.get('x-degraded'), null, res.text);
        assert.equal(res.headers.get('x-cache'), 'MISS');
      },
      { timeoutMs: 30_000 },
    );
    await eventually(async () => {
      const ready = await http(`${cluster.endpoint}/readyz`);
      assert.equal(ready.body.status, 'ready', ready.text);
    });
    // A half-open breaker closes on its gateway's next call through it.
    await eventually(async () => {
      await infer(`After the restart ${randomUUID()}`);
      assert.equal(await sumMetric(gatewayMetrics, 'skillserve_breaker_state'), 0);
    });
  });
});

describe('with RATE_LIMIT_FALLBACK=closed', () => {
  it('refuses with 503 RATE_LIMIT_UNAVAILABLE while Redis is down, at once', async () => {
    const redis = await OwnRedis.start();
    const t = await testConfig({ REDIS_URL: redis.url, RATE_LIMIT_FALLBACK: 'closed', GATEWAY_COUNT: '1' });
    const cluster = await startTestCluster(t.config, t.env);
    try {
      const { k } = await createKeys(t.config, { k: { tenant: 'acme', tier: 'standard' } });
      await redis.stop();
      const res = await http(`${cluster.endpoint}/v1/skills/nlp/infer`, { json: { input: 'hello' }, headers: k });
      assert.equal(res.status, 503, res.text);
      assert.equal(res.body.error.code, 'RATE_LIMIT_UNAVAILABLE');
      assert.ok(res.headers.get('retry-after'));
    } finally {
      await cluster.stop();
      await redis.destroy();
      await t.cleanup();
    }
  });
});
