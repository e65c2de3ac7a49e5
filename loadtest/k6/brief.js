// @ts-check
/**
 * skillserve under the product brief's load, for k6 (https://k6.io): the same users, mix and
 * checks as loadtest/locustfile.py, from loadtest/scenario.json. Profiles (PROFILE):
 *
 *   brief  the brief's rate as an arrival rate (users × requests per user per minute), 4 min
 *   spike  that rate, then spikeFactor × it for 30 s, then back
 *   soak   the brief's rate for the brief's 30 minutes
 *   smoke  a few dozen busy users for 25 s: no failed request, and the cache answers repeats
 *
 *   npm run loadtest:keys -- create --users 1000      # tenants and keys → .run/loadtest/keys.json
 *   k6 run -e PROFILE=brief loadtest/k6/brief.js
 *   npm run loadtest:keys -- remove
 *
 * Environment: PROFILE, USERS, RATE (per user per minute), DURATION_S, LOADTEST_HOST (default: the
 * keys file's endpoint), LOADTEST_KEYS (the keys file; relative paths are relative to this script),
 * LOADTEST_KEY (one key for every user instead), WEIGHTS (nlp=55,onnx=25,…), REPEAT_SHARE,
 * P95_MS, MAX_ERROR_RATE, SUMMARY_JSON (where handleSummary writes the full summary).
 * k6 exits non-zero when a threshold fails.
 */
import http from 'k6/http';
import { sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { endpointPicker, jobStatusRequest, judge, keyForUser, parseWeights, planRequest } from './lib/mix.js';

/** @type {import('./lib/mix.js').Scenario} */
const scenario = JSON.parse(open('../scenario.json'));
const PROFILE = __ENV.PROFILE || 'brief';
const found = scenario.profiles[PROFILE];
if (!found) throw new Error(`PROFILE=${PROFILE}: not one of ${Object.keys(scenario.profiles).join(', ')}`);
const profile = found;

/** @param {string} name @param {number | undefined} fallback @returns {number | undefined} */
function envNumber(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number ≥ 0 (got "${raw}")`);
  return n;
}

const USERS = /** @type {number} */ (envNumber('USERS', profile.users));
const RATE = /** @type {number} */ (envNumber('RATE', profile.requestsPerUserPerMinute));
const DURATION_S = /** @type {number} */ (envNumber('DURATION_S', profile.durationS));
const REPEAT_SHARE = /** @type {number} */ (envNumber('REPEAT_SHARE', scenario.repeatShare));
const P95_MS = envNumber('P95_MS', profile.thresholds.p95Ms);
const MAX_ERROR_RATE = envNumber('MAX_ERROR_RATE', profile.thresholds.maxErrorRate) ?? 0.01;
const MIN_CACHE_HITS = profile.thresholds.minCacheHits;

/** @type {import('./lib/mix.js').KeysFile} */
const keys = __ENV.LOADTEST_KEY
  ? { endpoint: '', keys: [{ tenant: '', tier: '', key: __ENV.LOADTEST_KEY }], userKeys: [0] }
  : JSON.parse(open(__ENV.LOADTEST_KEYS || '../../.run/loadtest/keys.json'));
const BASE = (__ENV.LOADTEST_HOST || keys.endpoint || 'http://127.0.0.1:8788').replace(/\/$/, '');
const pickEndpoint = endpointPicker(parseWeights(__ENV.WEIGHTS, scenario.weights));

const latency = {
  hit: new Trend('latency_hit', true),
  miss: new Trend('latency_miss', true),
  uncached: new Trend('latency_uncached', true),
};
const cacheHits = new Counter('cache_hits');
const cacheMisses = new Counter('cache_misses');
const answersOk = new Rate('answers_ok');
const failures = new Counter('failures');

/** Requests per minute for the whole run: every user's rate. */
const perMinute = Math.max(1, Math.round(USERS * RATE));
const perSecond = perMinute / 60;
// Enough VUs for the rate at up to 250 ms per iteration, and never more than there are users.
const vus = Math.max(10, Math.min(USERS, Math.ceil(perSecond * 0.25) + 10));

/** @returns {import('k6/options').Scenario} */
function arrivalScenario() {
  const common = { timeUnit: '1m', preAllocatedVUs: vus, maxVUs: Math.max(vus, USERS), gracefulStop: '15s' };
  if (PROFILE !== 'spike') {
    return { executor: 'constant-arrival-rate', rate: perMinute, duration: `${DURATION_S}s`, ...common };
  }
  const factor = profile.spikeFactor ?? 5;
  const steady = Math.max(10, Math.floor((DURATION_S - profile.rampS - 50) / 2));
  return {
    executor: 'ramping-arrival-rate',
    startRate: 0,
    stages: [
      { target: perMinute, duration: `${profile.rampS}s` },
      { target: perMinute, duration: `${steady}s` },
      { target: perMinute * factor, duration: '10s' },
      { target: perMinute * factor, duration: '30s' },
      { target: perMinute, duration: '10s' },
      { target: perMinute, duration: `${steady}s` },
    ],
    ...common,
    maxVUs: Math.max(vus * factor, USERS),
  };
}

/** @type {Record<string, string[]>} */
const thresholds = {
  http_req_failed: [`rate<=${MAX_ERROR_RATE}`],
  answers_ok: [`rate>=${1 - MAX_ERROR_RATE}`],
};
if (P95_MS !== undefined) thresholds.http_req_duration = [`p(95)<${P95_MS}`];
if (MIN_CACHE_HITS !== undefined) thresholds.cache_hits = [`count>=${MIN_CACHE_HITS}`];

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: { [PROFILE]: arrivalScenario() },
  thresholds,
  summaryTrendStats: ['min', 'med', 'p(95)', 'p(99)', 'max', 'count'],
  discardResponseBodies: false,
};

let uniqueCounter = 0;
const runTag = Math.random().toString(36).slice(2, 10);

/**
 * Sends one planned request as user `user` and records it.
 * @param {import('./lib/mix.js').Planned} req
 * @param {Record<string, string>} headers
 */
function send(req, headers) {
  const res = http.request(req.method, `${BASE}${req.path}`, req.body ?? null, {
    headers,
    tags: { name: req.name },
    timeout: '30s',
  });
  const body = typeof res.body === 'string' ? res.body : null;
  const verdict = judge(req, res.status, res.headers['X-Cache'], body);
  answersOk.add(verdict.ok);
  if (!verdict.ok) {
    failures.add(1, { kind: `${req.name}: ${verdict.kind}` });
    return verdict;
  }
  latency[verdict.category].add(res.timings.duration, { name: req.name });
  if (verdict.category === 'hit') cacheHits.add(1);
  if (verdict.category === 'miss') cacheMisses.add(1);
  return verdict;
}

/** One user action: a random one of the USERS users calls an endpoint by weight. */
export default function () {
  const user = Math.floor(Math.random() * USERS);
  const headers = { authorization: `Bearer ${keyForUser(keys, user)}`, 'content-type': 'application/json' };
  const req = planRequest(scenario, pickEndpoint(Math.random()), {
    repeatShare: REPEAT_SHARE,
    rand: Math.random,
    unique: () => `${runTag}-${__VU}-${uniqueCounter++}`,
  });
  const verdict = send(req, headers);
  if (req.name !== 'job' || !verdict.ok || !verdict.jobId || verdict.jobDone) return;
  for (let i = 0; i < scenario.jobPoll.maxPolls; i++) {
    sleep(scenario.jobPoll.intervalMs / 1000);
    const polled = send(jobStatusRequest(verdict.jobId), headers);
    if (!polled.ok || polled.jobDone) return;
  }
  answersOk.add(false);
  failures.add(1, { kind: 'job-status: not completed in time' });
}

/**
 * A short text summary (hits and misses apart, thresholds) on stdout, and k6's whole summary as
 * JSON in SUMMARY_JSON.
 * @param {any} data
 */
export function handleSummary(data) {
  /** @param {string} name */
  const trend = (name) => {
    const v = data.metrics[name] && data.metrics[name].values;
    if (!v) return `  ${name.padEnd(18)} no samples`;
    /** @param {number} x */
    const f = (x) => `${x.toFixed(2)} ms`;
    return `  ${name.padEnd(18)} n=${v.count}  med ${f(v.med)}  p95 ${f(v['p(95)'])}  p99 ${f(v['p(99)'])}  max ${f(v.max)}`;
  };
  /** @param {string} name */
  const count = (name) => (data.metrics[name] ? data.metrics[name].values.count : 0);
  const lines = [
    `skillserve ${PROFILE}: ${USERS} users × ${RATE}/min against ${BASE}`,
    trend('http_req_duration'),
    trend('latency_hit'),
    trend('latency_miss'),
    trend('latency_uncached'),
    `  cache: ${count('cache_hits')} hits, ${count('cache_misses')} misses; failures: ${count('failures')}`,
    'thresholds:',
  ];
  for (const [name, metric] of Object.entries(data.metrics)) {
    for (const [expr, result] of Object.entries(/** @type {any} */ (metric).thresholds || {})) {
      lines.push(`  ${/** @type {any} */ (result).ok ? 'ok  ' : 'FAIL'} ${name} ${expr}`);
    }
  }
  return {
    stdout: `${lines.join('\n')}\n`,
    [__ENV.SUMMARY_JSON || 'k6-summary.json']: JSON.stringify(data, null, 2),
  };
}
