/**
 * `npm run loadtest` (the product brief's scenario) and `npm run loadtest:smoke` (CI's profile):
 * one command against a running cluster (LOADTEST_HOST, or the one `npm run up` recorded in
 * RUN_DIR; with neither, a cluster of its own). It creates the run's tenants and keys, runs
 * Locust over loadtest/locustfile.py while it watches the cluster (the gateways' histograms, the
 * CPU of cluster, generator, Redis and Postgres) and a light probe client, removes the tenants,
 * prints the client's and the cluster's figures, and exits 1 when a threshold fails. The brief's
 * profile also writes docs/loadtest/brief-timeseries.csv, its section of docs/BENCHMARKS.md and
 * the plots.
 */
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeSection } from '../bench/lib/doc-section.js';
import { loadConfig } from '../src/config/index.js';
import { killAllSync } from '../bench/lib/processes.js';
import { createKeys, defaultKeysPath, planFor, removeKeys } from './lib/keys.js';
import { findLocust, locustVersion, runLocust } from './lib/locust.js';
import { Monitor, Probe, type ServerWindow, serverWindow, serverWindows } from './lib/monitor.js';
import { docsDir, writeCsv } from './lib/csv.js';
import { drawPlots } from './plots.js';
import { errorLines, latencyTable, ms, num, pct, provenance, runContext, sharedNote } from './lib/report.js';
import { loadScenario, profileOf } from './lib/scenario.js';
import { failedThresholds, type Sample, summarize, type Summary } from './lib/stats.js';
import { openTarget } from './lib/target.js';
import { DURATION_METRIC, prometheusQuantileMs } from './lib/server-view.js';

const print = (line: string) => process.stdout.write(`${line}\n`);

function envNumber(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number ≥ 0 (got "${raw}")`);
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { profile: { type: 'string', default: 'brief' } } });
  const profileName = values.profile!;
  const scenario = loadScenario();
  const profile = profileOf(scenario, profileName, {
    users: envNumber('LOADTEST_USERS'),
    durationS: envNumber('LOADTEST_DURATION_S'),
    requestsPerUserPerMinute: envNumber('LOADTEST_RATE'),
  });
  const thresholds = {
    ...profile.thresholds,
    ...(envNumber('LOADTEST_P95_MS') !== undefined ? { p95Ms: envNumber('LOADTEST_P95_MS') } : {}),
    ...(envNumber('LOADTEST_MAX_ERROR_RATE') !== undefined
      ? { maxErrorRate: envNumber('LOADTEST_MAX_ERROR_RATE') }
      : {}),
  };
  const workers = envNumber('LOADTEST_LOCUST_WORKERS') ?? 0;
  const writeDocs = profileName === 'brief' && process.env.LOADTEST_DOCS !== '0';
  const bin = findLocust();
  if (!bin) throw new Error('locust is not installed: bash scripts/setup.sh --loadtest installs python3-locust');

  const ctx = runContext();
  const target = await openTarget({ startIfNone: true });
  // Run files (keys, Locust's report) stay in this checkout's RUN_DIR, also when the cluster is the run's own.
  const local = loadConfig();
  const keysPath = process.env.LOADTEST_KEYS ?? defaultKeysPath(local);
  let exitCode = 1;
  try {
    const plan = planFor(scenario, target.config, profile.users, profile.requestsPerUserPerMinute);
    for (const w of plan.warnings) print(`loadtest: warning: ${w}`);
    const keys = await createKeys(target.config, plan, target.endpoint, keysPath);
    const tenants = new Set(keys.keys.map((k) => k.tenant)).size;
    print(
      `loadtest: ${profileName}: ${profile.users} users × ${profile.requestsPerUserPerMinute}/min for ${profile.durationS} s ` +
        `(ramp ${profile.rampS} s) against ${target.endpoint}; ${keys.keys.length} keys in ${tenants} tenants ` +
        `(users per key: ${Object.entries(plan.usersPerKey)
          .map(([t, n]) => `${t} ${n}`)
          .join(', ')})`,
    );
    try {
      const outDir = join(local.RUN_DIR, 'loadtest', profileName);
      const originMs = Date.now();
      let generatorPids: () => number[] = () => [];
      const groups = () => ({
        cluster: target.clusterPids(),
        monitoring: target.monitoringPids(),
        generator: generatorPids(),
        redis: target.redisPid ? [target.redisPid] : [],
        postgres: target.postgresPid ? [target.postgresPid] : [],
      });
      const monitor = new Monitor(originMs, target.gatewayAdminUrls, groups);
      const probe = new Probe(
        `${target.endpoint}/v1/skills/nlp/infer`,
        { authorization: `Bearer ${keys.probe.key}` },
        JSON.stringify({ input: scenario.nlp.repeats[0], task: 'sentiment' }),
      );
      await probe.start(500);
      await monitor.observe();
      monitor.start(profileName === 'smoke' ? 2_000 : 5_000);
      const result = await runLocust(
        {
          bin,
          host: target.endpoint,
          profile: profileName,
          users: profile.users,
          spawnRate: Math.max(1, Math.ceil(profile.users / Math.max(1, profile.rampS))),
          durationS: profile.durationS,
          keysFile: keysPath,
          outDir,
          workers,
          print,
          env: { LOADTEST_RATE: String(profile.requestsPerUserPerMinute) },
        },
        originMs,
        (pids) => (generatorPids = pids),
      );
      await monitor.stop();
      const probed = await probe.stop();
      exitCode = await report({
        profileName,
        profile,
        thresholds,
        samples: result.samples,
        monitor,
        probe: probed,
        locustExit: result.exitCode,
        htmlReport: result.htmlReport,
        writeDocs,
        ctx,
        target,
        generator: `${locustVersion(bin)} (${workers > 0 ? `master + ${workers} workers` : 'one process'}, FastHttpUser)`,
        keys: { count: keys.keys.length, tenants },
        originMs,
      });
    } finally {
      const removed = await removeKeys(target.config, keys, keysPath);
      print(`loadtest: removed the run's ${removed} tenants, their keys, facts and cached answers`);
    }
  } finally {
    await target.stop();
  }
  return exitCode;
}

interface ReportInput {
  profileName: string;
  profile: ReturnType<typeof profileOf>;
  thresholds: { p95Ms?: number; maxErrorRate?: number; minCacheHits?: number };
  samples: Sample[];
  monitor: Monitor;
  probe: Awaited<ReturnType<Probe['stop']>>;
  locustExit: number;
  htmlReport: string;
  writeDocs: boolean;
  ctx: ReturnType<typeof runContext>;
  target: Awaited<ReturnType<typeof openTarget>>;
  generator: string;
  keys: { count: number; tenants: number };
  originMs: number;
}

/** Prints the figures (and writes docs for the brief's profile); returns the exit code. */
async function report(r: ReportInput): Promise<number> {
  // The measured window: after every user has started, until the run's end.
  const fromMs = r.profile.rampS * 1000;
  const toMs = r.profile.durationS * 1000;
  const client = summarize(r.samples, fromMs, toMs);
  const obs = r.monitor.observations;
  const first = obs.find((o) => o.t >= fromMs) ?? obs[0];
  const last = [...obs].reverse().find((o) => o.t <= toMs) ?? obs[obs.length - 1];
  const server = first && last && last !== first ? serverWindow(first, last) : undefined;
  const failures = failedThresholds(client, r.thresholds);
  if (r.locustExit !== 0 && failures.length === 0) failures.push(`Locust exited with code ${r.locustExit}`);
  const prometheus = await fromPrometheus(r.target.prometheusUrl, r.originMs + fromMs, r.originMs + toMs);
  const body = describe(r, client, server, prometheus);
  print(`\n${body}\n`);
  print(`Locust's HTML report: ${r.htmlReport}`);
  if (r.writeDocs) {
    const windows = serverWindows(obs).map((w) => timeseriesRow(w, r.samples));
    writeCsv(join(docsDir, 'brief-timeseries.csv'), windows);
    const command = 'npm run loadtest';
    writeSection(
      'loadtest-brief',
      [
        "## Load test: the product brief's scenario",
        '',
        provenance(r.ctx, command, r.target.config, r.generator),
        server ? sharedNote(server.cores.other ?? NaN, cpus().length) : '',
        '',
        body,
        '',
        '![latency over time](loadtest/brief-latency.svg)',
        '',
        'Data: [loadtest/brief-timeseries.csv](loadtest/brief-timeseries.csv) (5 s windows); plots redrawn by `npm run loadtest:plots`.',
      ].join('\n'),
    );
    await drawPlots(print);
  }
  if (failures.length > 0) {
    for (const f of failures) print(`loadtest: THRESHOLD FAILED: ${f}`);
    return 1;
  }
  print(
    `loadtest: ${r.profileName} passed (${Object.entries(r.thresholds)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')})`,
  );
  return 0;
}

/**
 * The gateways' quantiles as Prometheus has them over the measured window: the cluster's own
 * Prometheus (`up` runs one) or LOADTEST_PROMETHEUS_URL's. An error is reported, not fatal.
 */
async function fromPrometheus(url: string | undefined, fromMs: number, toMs: number): Promise<string | undefined> {
  if (!url) return undefined;
  try {
    const q = await Promise.all(
      [0.5, 0.95, 0.99].map((p) => prometheusQuantileMs(url, p, (toMs - fromMs) / 1000, toMs / 1000)),
    );
    return `Prometheus (${url}) over the same window: p50 ${ms(q[0]!)}, p95 ${ms(q[1]!)}, p99 ${ms(q[2]!)}.`;
  } catch (err) {
    return `Prometheus (${url}) could not be asked: ${(err as Error).message}.`;
  }
}

function describe(r: ReportInput, c: Summary, s: ServerWindow | undefined, prometheus?: string): string {
  const p = r.profile;
  const goal = loadScenario().goal;
  const cores = s?.cores ?? {};
  const perRequestMs = (group: string) => ((cores[group] ?? NaN) * 1000) / c.ratePerS;
  return [
    `${num(p.users)} users, ${p.requestsPerUserPerMinute} requests per user per minute (Poisson arrivals), ` +
      `${pct(loadScenario().repeatShare, 0)} repeats, ${p.durationS} s with a ${p.rampS} s ramp; ` +
      `figures over the ${num(p.durationS - p.rampS)} s after the ramp. ${r.keys.count} keys in ${r.keys.tenants} tenants of mixed tiers; ` +
      `cluster: ${r.target.own ? 'started by the run' : 'already running'} at ${r.target.endpoint}. Generator: ${r.generator}.`,
    '',
    `**Client side** (Locust, every request timed in the locustfile): ${num(c.ratePerS, 1)} req/s, ` +
      `${num(c.requests)} requests, ${num(c.failed)} failed (${pct(c.errorRate, 2)}); cache hit rate ` +
      `${pct(c.hitRate)} of the infer requests (${num(c.hits)} hits, ${num(c.misses)} misses).`,
    '',
    latencyTable(c),
    '',
    errorLines(c),
    '',
    s
      ? `**Server side** (the gateways' \`${DURATION_METRIC}\` histograms, scraped from their admin ports, ` +
        `interpolated within buckets as Prometheus does): ${num(s.requests)} requests, p50 ${ms(s.p50)}, p95 ${ms(s.p95)}, ` +
        `p99 ${ms(s.p99)}; ${num(s.cacheHits)} cache hits counted by the gateways.`
      : "**Server side**: not available (the gateways' admin ports are unknown for this target).",
    ...(prometheus ? ['', prometheus] : []),
    '',
    `**Probe** (an independent client sending one cached request every 500 ms on its own key): hit p50 ` +
      `${ms(r.probe.hit.p50)}, p95 ${ms(r.probe.hit.p95)}, p99 ${ms(r.probe.hit.p99)} over ${num(r.probe.hit.count)} requests` +
      `${r.probe.failures ? `, ${r.probe.failures} not answered from the cache` : ''}.`,
    '',
    s
      ? `**CPU** (cores, from /proc): cluster ${num(cores.cluster ?? NaN, 2)} (${num(perRequestMs('cluster'), 2)} ms per request), ` +
        `Locust ${num(cores.generator ?? NaN, 2)} (${num(perRequestMs('generator'), 2)} ms per request), Redis ${num(cores.redis ?? NaN, 2)}, ` +
        `Postgres ${num(cores.postgres ?? NaN, 2)} (both shared with any other user of them), ` +
        (cores.monitoring ? `the cluster's Prometheus and exporters ${num(cores.monitoring, 2)}, ` : '') +
        `other processes ${num(cores.other ?? NaN, 2)}.`
      : '',
    '',
    verdict(c, s, r.probe.hit.p95, goal, r.profile.thresholds),
    locustAdvice(cores.generator ?? NaN),
  ].join('\n');
}

function verdict(
  c: Summary,
  s: ServerWindow | undefined,
  probeP95: number,
  goal: { p95Ms: number; maxErrorRate: number },
  brief: { p95Ms?: number; maxErrorRate?: number },
): string {
  const meets = (p95: number, maxErr: number) => c.overall.p95 < p95 && c.errorRate <= maxErr;
  const lines = [];
  if (brief.p95Ms !== undefined && brief.maxErrorRate !== undefined) {
    lines.push(
      `- The brief's target (p95 < ${brief.p95Ms} ms, < ${brief.maxErrorRate * 100} % errors): **${meets(brief.p95Ms, brief.maxErrorRate) ? 'met' : 'not met'}**.`,
    );
  }
  lines.push(
    `- Our goal (p95 < ${goal.p95Ms} ms, ${goal.maxErrorRate === 0 ? 'no' : `< ${goal.maxErrorRate * 100} %`} errors, as the users' tool measures it): **${meets(goal.p95Ms, goal.maxErrorRate) ? 'met' : 'not met'}**.`,
  );
  if (s && Number.isFinite(s.p95)) {
    const gap = c.overall.p95 - s.p95;
    const outside = gap > Math.max(2, s.p95);
    lines.push(
      `- What bounds the client's p95 (${ms(c.overall.p95)}): the gateways took ${ms(s.p95)} at p95 and the light probe saw ` +
        `${ms(probeP95)} for a hit, so ` +
        (outside
          ? `most of it (${ms(gap)}) is spent outside the gateways: in nginx, the kernel's queues and the generator's own event loop, all on the same cores.`
          : `it is the cluster's own time (the gateways' histogram covers the request path behind nginx), on cores it shares with the generator${s.cores.other && s.cores.other > 0.15 ? ' and with other work on the machine' : ''}.`),
    );
  }
  return lines.join('\n');
}

/**
 * When one Locust process needs master + workers: above about half a core its gevent loop starts
 * to queue the requests it times, and its figures grow with its own load rather than the cluster's.
 */
function locustAdvice(generatorCores: number): string {
  if (!Number.isFinite(generatorCores)) return '';
  return generatorCores > 0.5
    ? `- Locust used ${generatorCores.toFixed(2)} cores in one process: above half a core its own event loop adds to the latencies it reports. ` +
        'Run a master with workers (LOADTEST_LOCUST_WORKERS=N) on cores the cluster does not need, or Locust on another machine.'
    : `- One Locust process was enough: it used ${generatorCores.toFixed(2)} cores (workers pay off above about half a core per process, and only on cores the cluster does not need).`;
}

/** One row of brief-timeseries.csv: a monitor window with the client's figures over the same interval. */
function timeseriesRow(w: ServerWindow, samples: Sample[]) {
  const c = summarize(samples, w.fromT, w.toT);
  return {
    t_s: w.toT / 1000,
    req_per_s: c.ratePerS,
    client_p50_ms: c.overall.p50,
    client_p95_ms: c.overall.p95,
    client_p99_ms: c.overall.p99,
    hit_p95_ms: c.hit.p95,
    miss_p95_ms: c.miss.p95,
    server_p50_ms: w.p50,
    server_p95_ms: w.p95,
    server_p99_ms: w.p99,
    failed: c.failed,
    cluster_cores: w.cores.cluster ?? NaN,
    generator_cores: w.cores.generator ?? NaN,
    redis_cores: w.cores.redis ?? NaN,
    postgres_cores: w.cores.postgres ?? NaN,
    other_cores: w.cores.other ?? NaN,
  };
}

// Ctrl-C stops the generator; the run still removes its tenants and stops its own cluster.
// A second Ctrl-C leaves at once (the exit handler still kills a cluster the run started).
let interrupted = false;
process.on('SIGINT', () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  print('loadtest: interrupted; stopping the generator, then cleaning up (Ctrl-C again to leave now)');
  killAllSync();
});
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    print(`loadtest: ${(err as Error).stack ?? String(err)}`);
    killAllSync();
    process.exit(1);
  },
);
