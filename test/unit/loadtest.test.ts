import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  endpointPicker,
  judge,
  keyForUser,
  parseWeights,
  type Planned,
  planRequest,
} from '../../loadtest/k6/lib/mix.js';
import { readCsv, writeCsv } from '../../loadtest/lib/csv.js';
import { planKeys } from '../../loadtest/lib/keys.js';
import { loadScenario, profileOf } from '../../loadtest/lib/scenario.js';
import {
  coresBetween,
  histogramDelta,
  histogramQuantileMs,
  parseDurationHistogram,
} from '../../loadtest/lib/server-view.js';
import {
  crossing,
  failedThresholds,
  parseSampleLines,
  percentile,
  type Sample,
  summarize,
} from '../../loadtest/lib/stats.js';
import { drawPlots } from '../../loadtest/plots.js';

const scenario = loadScenario();
const limits = { free: 100, standard: 1000, premium: 10000 };

describe('load test key plan', () => {
  const plan = planKeys({
    users: 1000,
    requestsPerUserPerMinute: 10,
    weights: scenario.weights,
    tiers: { free: 0.1, standard: 0.5, premium: 0.4 },
    limits,
    windowS: 60,
    headroom: 0.5,
    keysPerTenant: 2,
  });

  it('keeps every key under its share of its tier limit on the busiest skill', () => {
    const w = scenario.weights;
    const busiest = Math.max(w.nlp + w.job, w.onnx) / Object.values(w).reduce((a, b) => a + b, 0);
    const usersOn = new Map<number, number>();
    for (const k of plan.userKeys) usersOn.set(k, (usersOn.get(k) ?? 0) + 1);
    for (const [key, users] of usersOn) {
      const tier = plan.keys[key]!;
      assert.ok(users * 10 * busiest <= 0.5 * limits[tier], `${tier} key ${key} carries ${users} users`);
    }
    assert.equal(plan.userKeys.length, 1000);
    assert.deepEqual(plan.warnings, []);
  });

  it('mixes the tiers in every prefix of the users', () => {
    const tierOf = (u: number) => plan.keys[plan.userKeys[u]!];
    const first100 = Array.from({ length: 100 }, (_, u) => tierOf(u));
    assert.equal(first100.filter((t) => t === 'free').length, 10);
    assert.equal(first100.filter((t) => t === 'standard').length, 50);
    assert.equal(first100.filter((t) => t === 'premium').length, 40);
  });

  it('warns when one user alone would exceed a tier', () => {
    const busy = planKeys({
      users: 4,
      requestsPerUserPerMinute: 600,
      weights: scenario.weights,
      tiers: { free: 1, standard: 0, premium: 0 },
      limits,
      windowS: 60,
      headroom: 0.5,
      keysPerTenant: 2,
    });
    assert.equal(busy.warnings.length, 1);
    assert.match(busy.warnings[0]!, /free user .* expect 429s/);
    assert.equal(new Set(busy.userKeys).size, 4, 'one key per user at least');
  });
});

describe('the shared request mix (loadtest/k6/lib/mix.js)', () => {
  it('picks endpoints by weight and parses weights from the command line', () => {
    const pick = endpointPicker({ nlp: 1, onnx: 1, recall: 0, assert: 0, job: 2 });
    assert.equal(pick(0), 'nlp');
    assert.equal(pick(0.3), 'onnx');
    assert.equal(pick(0.5), 'job');
    assert.equal(pick(0.9999), 'job');
    assert.deepEqual(parseWeights('nlp=1, job=0', scenario.weights), { ...scenario.weights, nlp: 1, job: 0 });
    assert.throws(() => parseWeights('chat=3', scenario.weights), /not <endpoint>=<weight/);
    assert.throws(() => endpointPicker({ nlp: 0, onnx: 0, recall: 0, assert: 0, job: 0 }), /positive weight/);
  });

  it('sends repeats from the pools and unique inputs nobody else sends', () => {
    let n = 0;
    const opts = (repeatShare: number) => ({ repeatShare, rand: Math.random, unique: () => `u-${n++}` });
    const repeat = planRequest(scenario, 'nlp', opts(1));
    assert.ok(repeat.repeat);
    assert.ok(scenario.nlp.repeats.includes(JSON.parse(repeat.body!).input));
    const uniques = Array.from({ length: 20 }, () => JSON.parse(planRequest(scenario, 'nlp', opts(0)).body!).input);
    assert.equal(new Set(uniques).size, 20);
    const tensor = JSON.parse(planRequest(scenario, 'onnx', opts(0)).body!);
    assert.deepEqual(tensor.inputs[0].shape, [1, 4]);
    assert.equal(planRequest(scenario, 'recall', opts(1)).method, 'GET');
    assert.equal(JSON.parse(planRequest(scenario, 'job', opts(1)).body!).skill, 'nlp');
  });

  it('maps users to their keys and wraps around', () => {
    const keys = {
      endpoint: '',
      keys: ['a', 'b'].map((key) => ({ tenant: key, tier: 'free', key })),
      userKeys: [0, 1, 1],
    };
    assert.deepEqual(
      [0, 1, 2, 3, 5].map((u) => keyForUser(keys, u)),
      ['a', 'b', 'b', 'a', 'b'],
    );
  });
});

/** The same answers judged by mix.js and by the locustfile: the two implementations must agree. */
const nlpRepeat: Planned = { name: 'nlp', method: 'POST', path: '/', body: '{}', repeat: true };
const nlpUnique: Planned = { ...nlpRepeat, repeat: false };
const judgeCases: [Planned, number, string | undefined, string][] = [
  [nlpRepeat, 200, 'HIT', '{"output":{"label":"positive"}}'],
  [nlpRepeat, 200, 'MISS', '{"output":{"label":"positive"}}'],
  [nlpUnique, 200, 'HIT', '{"output":{}}'],
  [nlpRepeat, 200, undefined, '{"output":{}}'],
  [nlpRepeat, 429, undefined, '{"error":{"code":"RATE_LIMITED"}}'],
  [nlpRepeat, 502, undefined, '<html>bad gateway</html>'],
  [nlpRepeat, 0, undefined, ''],
  [{ ...nlpRepeat, name: 'onnx' }, 200, 'MISS', '{"outputs":[]}'],
  [{ ...nlpRepeat, name: 'onnx' }, 200, 'STALE', '{"outputs":[{"name":"x"}]}'],
  [{ name: 'recall', method: 'GET', path: '/', repeat: false }, 200, undefined, '{"triples":[]}'],
  [{ name: 'assert', method: 'POST', path: '/', repeat: false }, 201, undefined, '{"triples":[{}]}'],
  [{ name: 'assert', method: 'POST', path: '/', repeat: false }, 200, undefined, '{"triples":[]}'],
  [{ name: 'job', method: 'POST', path: '/', repeat: false }, 202, undefined, '{"id":"nlp.a-1","status":"queued"}'],
  [
    { name: 'job-status', method: 'GET', path: '/', repeat: false },
    200,
    undefined,
    '{"status":"completed","output":{}}',
  ],
  [{ name: 'job-status', method: 'GET', path: '/', repeat: false }, 200, undefined, '{"status":"completed"}'],
  [
    { name: 'job-status', method: 'GET', path: '/', repeat: false },
    200,
    undefined,
    '{"status":"failed","error":{"code":"SKILL_ERROR"}}',
  ],
];

describe('answer checks', () => {
  it('classifies hits and misses and names what failed', () => {
    const v = judgeCases.map(([req, status, xCache, text]) => judge(req, status, xCache, text));
    assert.deepEqual(
      v.map((x) => [x.ok, x.category, x.kind ?? '']),
      [
        [true, 'hit', ''],
        [true, 'miss', ''],
        [false, 'hit', 'a unique input answered from the cache'],
        [false, 'miss', 'X-Cache is missing'],
        [false, 'miss', '429 RATE_LIMITED'],
        [false, 'miss', '502 body is not JSON'],
        [false, 'miss', 'no answer'],
        [false, 'miss', '200 unexpected body'],
        [true, 'hit', ''],
        [true, 'uncached', ''],
        [true, 'uncached', ''],
        [false, 'uncached', 'unexpected body'],
        [true, 'uncached', ''],
        [true, 'uncached', ''],
        [false, 'uncached', 'completed job without output'],
        [false, 'uncached', 'job failed: SKILL_ERROR'],
      ],
    );
    assert.equal(v[12]!.jobId, 'nlp.a-1');
    assert.equal(v[13]!.jobDone, true);
  });

  it('agree with the locustfile', () => {
    const dir = fileURLToPath(new URL('../../loadtest/', import.meta.url));
    const cases = judgeCases.map(([req, status, xCache, text]) => [req.name, req.repeat, status, xCache ?? null, text]);
    const script = [
      'import json, sys',
      `sys.path.insert(0, ${JSON.stringify(dir)})`,
      'import locustfile',
      'cases = json.load(sys.stdin)',
      'print(json.dumps([list(locustfile.judge(*c)[:3]) for c in cases]))',
    ].join('\n');
    const py = spawnSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify(cases), encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    const fromPython = JSON.parse(py.stdout.trim().split('\n').at(-1)!);
    const fromJs = judgeCases.map(([req, status, xCache, text]) => {
      const v = judge(req, status, xCache, text);
      return [v.category, v.ok, v.kind ?? ''];
    });
    assert.deepEqual(fromPython, fromJs);
  });
});

const sample = (t: number, latencyMs: number, category: Sample['category'], ok = true, kind = ''): Sample => ({
  t,
  name: category === 'uncached' ? 'recall' : 'nlp',
  category,
  latencyMs,
  ok,
  kind,
});

describe('load test statistics', () => {
  it('takes nearest-rank percentiles', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(sorted, 0.5), 50);
    assert.equal(percentile(sorted, 0.95), 95);
    assert.equal(percentile(sorted, 0.99), 99);
    assert.ok(Number.isNaN(percentile([], 0.5)));
  });

  it('summarizes a window: hits and misses apart, failures out of the latencies', () => {
    const samples = [
      sample(0, 100, 'miss'),
      sample(1000, 1, 'hit'),
      sample(1100, 3, 'hit'),
      sample(1200, 20, 'miss'),
      sample(1300, 5, 'uncached'),
      sample(1400, 9999, 'miss', false, '429 RATE_LIMITED'),
    ];
    const s = summarize(samples, 1000, 2000);
    assert.equal(s.requests, 5);
    assert.equal(s.ratePerS, 5);
    assert.equal(s.failed, 1);
    assert.deepEqual(s.errors, { 'nlp: 429 RATE_LIMITED': 1 });
    assert.deepEqual([s.hit.count, s.hit.p50, s.hit.p95], [2, 1, 3]);
    assert.deepEqual([s.miss.count, s.miss.p95], [1, 20]);
    assert.equal(s.overall.p95, 20);
    assert.equal(s.hitRate, 2 / 3);
    assert.deepEqual(failedThresholds(s, { p95Ms: 200, maxErrorRate: 0.25, minCacheHits: 1 }), []);
    assert.deepEqual(failedThresholds(s, { p95Ms: 20, maxErrorRate: 0, minCacheHits: 3 }), [
      'p95 20.0 ms is not below 20 ms',
      '1 of 5 requests failed (20.00 %, allowed 0 %)',
      '2 answers came from the cache (at least 3 expected)',
    ]);
    assert.deepEqual(failedThresholds(summarize([]), {}), ['no request completed']);
  });

  it("reads the locustfile's samples", () => {
    const text =
      't_epoch_ms,name,category,latency_ms,ok,kind\n1000500,nlp,hit,1.25,1,\n1000900,job,uncached,7,0,429 RATE_LIMITED\n';
    assert.deepEqual(parseSampleLines(text, 1_000_000), [
      { t: 500, name: 'nlp', category: 'hit', latencyMs: 1.25, ok: true, kind: '' },
      { t: 900, name: 'job', category: 'uncached', latencyMs: 7, ok: false, kind: '429 RATE_LIMITED' },
    ]);
  });

  it('finds where p95 crosses a limit, on log scales', () => {
    const rows = [
      { users: 1000, p95_ms: 10 },
      { users: 4000, p95_ms: 40 },
      { users: 8000, p95_ms: 400 },
    ];
    assert.equal(crossing(rows, 20), 2000);
    assert.equal(crossing(rows, 5), 1000);
    assert.equal(crossing(rows, 1000), undefined);
  });
});

describe("the cluster's own view", () => {
  const metrics = (n: number) =>
    [
      '# TYPE skillserve_http_request_duration_seconds histogram',
      `skillserve_http_request_duration_seconds_bucket{le="0.005",route="/v1/skills/:skill/infer",method="POST",status="200"} ${n * 50}`,
      `skillserve_http_request_duration_seconds_bucket{le="0.01",route="/v1/skills/:skill/infer",method="POST",status="200"} ${n * 90}`,
      `skillserve_http_request_duration_seconds_bucket{le="+Inf",route="/v1/skills/:skill/infer",method="POST",status="200"} ${n * 100}`,
      `skillserve_http_request_duration_seconds_count{route="/v1/skills/:skill/infer",method="POST",status="200"} ${n * 100}`,
      `skillserve_http_request_duration_seconds_sum{route="/v1/skills/:skill/infer",method="POST",status="200"} ${n * 0.5}`,
      `skillserve_http_request_duration_seconds_bucket{le="0.005",route="/readyz",method="GET",status="200"} 1000`,
    ].join('\n');

  it('sums the gateways\u2019 histograms and interpolates quantiles as Prometheus does', () => {
    const routes = (labels: string) => !labels.includes('readyz');
    const before = parseDurationHistogram(metrics(1), routes);
    const after = parseDurationHistogram(`${metrics(2)}\n${metrics(1)}`, routes);
    const d = histogramDelta(after, before);
    assert.equal(d.count, 200);
    assert.equal(d.buckets.get(0.005), 100);
    assert.equal(histogramQuantileMs(d, 0.5), 5);
    assert.equal(histogramQuantileMs(d, 0.25), 2.5);
    assert.ok(Math.abs(histogramQuantileMs(d, 0.7) - 7.5) < 1e-9);
    assert.equal(histogramQuantileMs(d, 0.99), 10, 'above the last finite bucket: its bound');
    assert.ok(Number.isNaN(histogramQuantileMs(histogramDelta(before, before), 0.5)));
  });

  it('splits CPU into groups and the rest of the machine', () => {
    const a = { atMs: 0, groups: { cluster: 0, generator: 0 }, machineBusyTicks: 0, machineTotalTicks: 0 };
    const b = { atMs: 1000, groups: { cluster: 500, generator: 250 }, machineBusyTicks: 150, machineTotalTicks: 200 };
    assert.deepEqual(coresBetween(a, b, 2), { cluster: 0.5, generator: 0.25, machine: 1.5, other: 0.75 });
  });
});

describe('load test plots', () => {
  it('draws SVG plots from the CSVs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skillserve-plots-'));
    try {
      writeCsv(join(dir, 'capacity.csv'), [
        { users: 1000, offered_req_per_s: 166.7, achieved_req_per_s: 166, p95_ms: 8, p99_ms: 12, server_p95_ms: 4 },
        {
          users: 2000,
          offered_req_per_s: 333.3333,
          achieved_req_per_s: 331,
          p95_ms: 250,
          p99_ms: NaN,
          server_p95_ms: 90,
        },
      ]);
      assert.deepEqual(readCsv(join(dir, 'capacity.csv'))[1], {
        users: 2000,
        offered_req_per_s: 333.333,
        achieved_req_per_s: 331,
        p95_ms: 250,
        p99_ms: NaN,
        server_p95_ms: 90,
      });
      const files = await drawPlots(() => undefined, dir);
      assert.deepEqual(files, [join(dir, 'capacity.svg')]);
      const svg = readFileSync(files[0]!, 'utf8');
      assert.match(svg, /^<svg/);
      for (const text of ['client p95', 'gateways p95', 'answered without error', '200 ms'])
        assert.ok(svg.includes(text), text);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('load test profiles', () => {
  it("has the brief's scenario and a smoke profile that gates on errors and hits", () => {
    const brief = profileOf(scenario, 'brief');
    assert.deepEqual([brief.users, brief.requestsPerUserPerMinute, brief.durationS], [1000, 10, 240]);
    assert.equal(scenario.repeatShare, 0.8);
    assert.deepEqual(profileOf(scenario, 'smoke').thresholds, { maxErrorRate: 0, minCacheHits: 1 });
    assert.equal(profileOf(scenario, 'brief', { users: 5 }).users, 5);
    assert.throws(() => profileOf(scenario, 'nope'), /not one of brief, smoke, spike, soak/);
  });
});
