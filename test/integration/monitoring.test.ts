import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { RunningCluster } from '../../src/cluster/supervisor.js';
import {
  LABELS,
  METRICS,
  type MetricSpec,
  type Role,
  SERIES_BUDGET,
  seriesNames,
} from '../../src/observability/catalogue.js';
import { metricNames } from '../../scripts/ops/promql.js';
import { expressions, substituteVariables } from '../../scripts/ops/usage.js';
import { overview } from '../../scripts/ops/dashboards/overview.js';
import { adminUrls, http, startTestCluster, withDevKey } from '../helpers/cluster.js';
import { eventually, freePorts, testConfig } from '../helpers/env.js';
import { createKeys } from '../helpers/keys.js';

/**
 * The monitoring as `up` runs it: a real Prometheus scraping every process and the exporters,
 * evaluating skillserve's rules and sending to a real Alertmanager. After a short mixed load, every
 * expression of the rules and dashboards runs in that Prometheus and names only series that exist.
 */
describe('monitoring (live Prometheus)', () => {
  let t: Awaited<ReturnType<typeof testConfig>>;
  let cluster: RunningCluster;
  let free: { authorization: string };
  const infer = withDevKey(() => cluster);
  const prom = async (path: string, params: Record<string, string> = {}) => {
    const res = await http(`${cluster.prometheusUrl}${path}?${new URLSearchParams(params)}`);
    assert.equal(res.status, 200, `${path} ${JSON.stringify(params)}: ${res.text}`);
    return res.body.data;
  };
  const query = (q: string) =>
    prom('/api/v1/query', { query: q }) as Promise<{
      result: { metric: Record<string, string>; value: [number, string] }[];
    }>;

  before(async () => {
    const [promPort, amPort, nginxExp, redisExp, pgExp] = await freePorts(5);
    t = await testConfig({
      PROMETHEUS: 'on',
      ALERTMANAGER: 'on',
      PROMETHEUS_PORT: String(promPort),
      ALERTMANAGER_PORT: String(amPort),
      NGINX_EXPORTER_PORT: String(nginxExp),
      REDIS_EXPORTER_PORT: String(redisExp),
      POSTGRES_EXPORTER_PORT: String(pgExp),
      RATE_LIMITS: 'free=3,standard=1000,premium=100000',
    });
    free = (await createKeys(t.config, { free: { tenant: 'frugal', tier: 'free' } })).free!;
    cluster = await startTestCluster(t.config, t.env);
  });
  after(async () => {
    await cluster?.stop();
    await t?.cleanup();
  });

  /** Hits, misses, a 404, a 400, rate-limited requests; and names a client makes up. */
  async function mixedLoad(tag: string) {
    const text = `Monitoring load ${tag}`;
    // A miss, then hits (the first answer is written to Redis in the background).
    await eventually(async () => {
      const res = await infer(`${cluster.endpoint}/v1/skills/nlp/infer`, { json: { input: text, task: 'sentiment' } });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers.get('x-cache'), 'HIT');
    });
    await infer(`${cluster.endpoint}/v1/skills/nlp/infer`, { json: { input: `${text} ${randomUUID()}` } });
    await infer(`${cluster.endpoint}/v1/skills/onnx/infer`, {
      json: { model: 'classifier', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] },
    });
    // Names and ids a client makes up must not become labels.
    const made = `zz${randomUUID().slice(0, 8)}`;
    assert.equal((await infer(`${cluster.endpoint}/v1/skills/${made}/infer`, { json: { input: 'x' } })).status, 404);
    const badModel = await infer(`${cluster.endpoint}/v1/skills/onnx/infer`, {
      json: { model: made, inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] },
    });
    assert.equal(badModel.status, 400, badModel.text);
    await infer(`${cluster.endpoint}/${made}/${randomUUID()}`, { headers: { 'x-request-id': made } });
    await infer(`${cluster.endpoint}/v1/jobs/${made}`, { method: 'PATCH' });
    const limited = [];
    for (let i = 0; i < 5; i++)
      limited.push(
        (await http(`${cluster.endpoint}/v1/skills/nlp/infer`, { headers: free, json: { input: `${text} ${i}` } }))
          .status,
      );
    assert.ok(limited.includes(429), `the free key is limited: ${limited}`);
    return made;
  }

  it('scrapes every process and exporter, and every rule and panel names series that exist', async () => {
    await eventually(
      async () => {
        const { activeTargets } = await prom('/api/v1/targets');
        const jobs = new Set(activeTargets.map((x: { labels: { job: string } }) => x.labels.job));
        for (const job of [
          'skillserve-gateway',
          'skillserve-dispatcher',
          'skillserve-skill',
          'nginx',
          'redis',
          'postgres',
          'prometheus',
          'alertmanager',
        ])
          assert.ok(jobs.has(job), `no target of ${job}`);
        for (const x of activeTargets)
          assert.equal(x.health, 'up', `${x.labels.job} ${x.labels.instance}: ${x.lastError}`);
        assert.equal(
          activeTargets.filter((x: { labels: { job: string } }) => x.labels.job === 'skillserve-gateway').length,
          2,
        );
      },
      { timeoutMs: 30_000 },
    );
    // A scrape before the load and two after it, so rates see the load; the rules evaluated.
    await new Promise((r) => setTimeout(r, 6_000));
    const made = await mixedLoad('one');
    await new Promise((r) => setTimeout(r, 11_000));

    const names = new Set<string>(await prom('/api/v1/label/__name__/values'));
    const pending = (Object.values(METRICS) as MetricSpec[]).filter((s) => s.pending);
    for (const s of pending)
      for (const n of seriesNames(s))
        assert.ok(!names.has(n), `${n} is exported now: drop its "pending" in the catalogue`);
    const waiting = new Set(pending.flatMap(seriesNames));
    const missing: string[] = [];
    for (const { where, expr } of expressions()) {
      await query(expr); // parses and runs in the real Prometheus (400 otherwise)
      for (const n of metricNames(expr).names) if (!names.has(n) && !waiting.has(n)) missing.push(`${where}: ${n}`);
    }
    assert.deepEqual(missing, [], 'every series a rule or panel reads exists');

    const { groups } = await prom('/api/v1/rules');
    for (const g of groups) for (const r of g.rules) assert.equal(r.health, 'ok', `${r.name}: ${r.lastError}`);
    const alerts = (await prom('/api/v1/alerts')).alerts as { labels: Record<string, string> }[];
    assert.ok(alerts.some((a) => a.labels.alertname === 'Watchdog'));

    // The queries behind the brief's six overview panels return data.
    const panels = new Map((overview().panels ?? []).map((p) => [p.title, p]));
    for (const title of [
      'Request latency',
      'Throughput by status',
      'Instance health',
      'Cache hits and misses',
      'Error rate',
      'CPU per instance',
      'Memory per instance',
    ]) {
      const panel = panels.get(title);
      assert.ok(panel, title);
      for (const target of panel.targets ?? []) {
        const { result } = await query(substituteVariables(target.expr!));
        assert.ok(result.length > 0, `${title}: ${target.expr} returned nothing`);
      }
    }
    const hits = await query('sum(skillserve_cache_requests_total{result="hit"})');
    assert.ok(Number(hits.result[0]?.value[1]) >= 1, 'a cache hit was counted');
    const limited = await query('sum(skillserve_rate_limit_decisions_total{tier="free",outcome="limited"})');
    assert.ok(Number(limited.result[0]?.value[1]) >= 1, 'the rate-limited requests were counted');
    const made2 = await query(
      `count({__name__=~"skillserve_.+", skill="${made}"}) or count({__name__=~"skillserve_.+", model="${made}"})`,
    );
    assert.equal(made2.result.length, 0, 'made-up names are not labels');
  });

  it('keeps every process within its series budget, however many names clients make up', async () => {
    const count = async (role: Role) => {
      const prefix = role === 'skill' ? 'skill-' : role;
      const urls = await adminUrls(cluster, prefix);
      const keys = new Set<string>();
      for (const url of urls) {
        const { text } = await http(`${url}/metrics`);
        const series = text.split('\n').filter((l) => l && !l.startsWith('#'));
        const own = series.filter((l) => l.startsWith('skillserve_'));
        // Enumerated labels take only their values.
        for (const spec of Object.values(METRICS) as MetricSpec[])
          for (const [label, key] of Object.entries(spec.labels)) {
            const values: readonly string[] | undefined =
              'values' in LABELS[key] ? (LABELS[key] as { values: readonly string[] }).values : undefined;
            if (!values) continue;
            for (const line of series.filter((l) => seriesNames(spec).some((n) => l.startsWith(`${n}{`)))) {
              const v = new RegExp(`[{,]${label}="([^"]*)"`).exec(line)?.[1];
              if (v !== undefined)
                assert.ok(values.includes(v), `${line}: ${label}="${v}" is not one of ${values.join(', ')}`);
            }
          }
        assert.ok(
          series.length <= SERIES_BUDGET[role],
          `${url}: ${series.length} series > budget ${SERIES_BUDGET[role]}`,
        );
        // Node's own collectors come and go with the runtime (a first major GC adds its series), so
        // only skillserve's series are compared: their union over the role's processes.
        for (const line of own) keys.add(line.slice(0, line.lastIndexOf(' ')));
      }
      return keys;
    };
    const before = {
      gateway: await count('gateway'),
      dispatcher: await count('dispatcher'),
      skill: await count('skill'),
    };
    for (let i = 0; i < 3; i++) await mixedLoad(`round ${i}`);
    const afterwards = {
      gateway: await count('gateway'),
      dispatcher: await count('dispatcher'),
      skill: await count('skill'),
    };
    for (const role of ['gateway', 'dispatcher', 'skill'] as const) {
      const added = [...afterwards[role]].filter((k) => !before[role].has(k));
      assert.deepEqual(added, [], `random names and ids add no ${role} series`);
    }
  });

  it('answers 404 for /metrics and internals through the public port', async () => {
    for (const path of ['/metrics', '/stub_status', '/-/ready', '/api/v1/targets']) {
      const res = await http(`${cluster.endpoint}${path}`);
      assert.equal(res.status, 404, `${path}: ${res.status}`);
      assert.doesNotMatch(res.text, /skillserve_|process_cpu|Active connections/);
    }
  });

  it('a stopped gateway makes InstanceDown pending and its target down; starting it again clears it', async () => {
    const gateway = cluster.processes.find((p) => p.spec.name === 'gateway-2')!;
    await gateway.stop(5_000);
    await eventually(
      async () => {
        const { result } = await query('up{instance="gateway-2"}');
        assert.equal(result[0]?.value[1], '0');
        const alerts = (await prom('/api/v1/alerts')).alerts as { labels: Record<string, string>; state: string }[];
        const down = alerts.find((a) => a.labels.alertname === 'InstanceDown' && a.labels.instance === 'gateway-2');
        assert.equal(down?.state, 'pending', JSON.stringify(down));
        assert.equal(down?.labels.severity, 'critical');
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    gateway.start();
    await eventually(
      async () => {
        const { result } = await query('up{instance="gateway-2"}');
        assert.equal(result[0]?.value[1], '1');
        const alerts = (await prom('/api/v1/alerts')).alerts as { labels: Record<string, string> }[];
        assert.ok(!alerts.some((a) => a.labels.alertname === 'InstanceDown'), 'cleared');
      },
      { timeoutMs: 40_000, intervalMs: 500 },
    );
  });
});
