import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { adminUrls, http, startTestCluster } from '../helpers/cluster.js';
import { testConfig } from '../helpers/env.js';
import { createKeys } from '../helpers/keys.js';
import { sumMetric } from '../helpers/metrics.js';

let cluster: Awaited<ReturnType<typeof startTestCluster>>;
let cleanup: () => Promise<void>;
let gateway: string;
let gatewayAdmin: string;
let key: { authorization: string };

before(async () => {
  const t = await testConfig({ GATEWAY_COUNT: '1', CACHE_TTLS: 'nlp=4', CACHE_REFRESH_LEAD_MS: '800' });
  cleanup = t.cleanup;
  cluster = await startTestCluster(t.config, t.env);
  gateway = `http://127.0.0.1:${t.config.GATEWAY_BASE_PORT}`;
  [gatewayAdmin] = (await adminUrls(cluster, 'gateway')) as [string];
  ({ key } = (await createKeys(t.config, { key: { tenant: 'acme', tier: 'premium' } })) as {
    key: { authorization: string };
  });
});

after(async () => {
  await cluster?.stop();
  await cleanup?.();
});

it('recomputes a regularly requested entry before it expires, so the traffic keeps hitting', async () => {
  const statuses: string[] = [];
  // A client asking every 1.3 s for about 18 s: with a 4 s TTL, plain TTL would miss about 5 times.
  for (let i = 0; i < 14; i++) {
    const res = await http(`${gateway}/v1/skills/nlp/infer`, {
      json: { input: 'The weekly report looks great.' },
      headers: key,
    });
    assert.equal(res.status, 200, res.text);
    statuses.push(res.headers.get('x-cache') ?? '?');
    await new Promise((r) => setTimeout(r, 1_300));
  }
  const refreshed = await sumMetric(
    [`${gatewayAdmin}/metrics`],
    'skillserve_cache_refreshes_total',
    'outcome="refreshed"',
  );
  assert.ok(refreshed >= 2, `refreshes: ${refreshed}; answers: ${statuses.join(' ')}`);
  const misses = statuses.filter((s) => s === 'MISS').length;
  assert.ok(misses <= 2, `answers: ${statuses.join(' ')}`);
});
