/**
 * `npm run loadtest:capacity`: the capacity curve. Steps the brief's users up (500, 1k, 2k, 4k, …; each
 * sends 10 requests a minute, 80 % repeats) with the light open-loop generator
 * (lib/open-loop.ts) until p95 passes 200 ms or requests fail, and records each step's client
 * percentiles next to the gateways' own and the CPU of cluster and generator. Writes
 * docs/loadtest/capacity.csv, its section of docs/BENCHMARKS.md and the plot.
 *
 * Locust is not used here: on 2 cores its own CPU (about 1 ms per request) would decide the
 * figure long before the cluster does. Bounded: at most LOADTEST_CAPACITY_USERS steps of
 * LOADTEST_WARMUP_S + LOADTEST_STEP_S seconds.
 */
import { cpus } from 'node:os';
import { join } from 'node:path';
import { writeSection } from '../bench/lib/doc-section.js';
import { loadConfig } from '../src/config/index.js';
import { docsDir, writeCsv } from './lib/csv.js';
import { createKeys, defaultKeysPath, planFor, removeKeys } from './lib/keys.js';
import { Monitor, serverWindow } from './lib/monitor.js';
import { runOpenLoop } from './lib/open-loop.js';
import { ms, num, pct, provenance, runContext, sharedNote } from './lib/report.js';
import { loadScenario, profileOf } from './lib/scenario.js';
import { crossing, summarize } from './lib/stats.js';
import { openTarget } from './lib/target.js';
import { drawPlots } from './plots.js';

const print = (line: string) => process.stdout.write(`${line}\n`);
const GOAL_MS = 20;
const BRIEF_MS = 200;
/** Requests per second sent from one loopback address: well under nginx's per-IP limit. */
const PER_ADDRESS = 400;

function envList(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (!raw) return fallback;
  const list = raw.split(',').map(Number);
  if (list.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`${name}: whole numbers ≥ 1, comma-separated`);
  return list;
}

function envSeconds(name: string, fallback: number): number {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(n) || n < 1 || n > 600) throw new Error(`${name} must be 1–600 seconds`);
  return n;
}

async function main(): Promise<void> {
  const scenario = loadScenario();
  const brief = profileOf(scenario, 'brief');
  const steps = envList('LOADTEST_CAPACITY_USERS', [500, 1000, 2000, 4000, 8000, 16000, 32000, 64000]);
  const stepS = envSeconds('LOADTEST_STEP_S', 30);
  const warmupS = envSeconds('LOADTEST_WARMUP_S', 10);
  const rate = brief.requestsPerUserPerMinute;
  const ctx = runContext();
  const target = await openTarget({ startIfNone: true });
  const keysPath = `${defaultKeysPath(loadConfig())}.capacity`;
  const maxUsers = Math.max(...steps);
  const plan = planFor(scenario, target.config, maxUsers, rate);
  const rows: CapacityRow[] = [];
  const keys = await createKeys(target.config, plan, target.endpoint, keysPath);
  print(
    `capacity: ${keys.keys.length} keys for up to ${maxUsers} users; steps ${steps.join(', ')}; ${warmupS} s + ${stepS} s each`,
  );
  let stopped = '';
  try {
    let previousRate = 0;
    for (const users of steps) {
      const offered = (users * rate) / 60;
      const addresses = Array.from(
        { length: Math.max(1, Math.ceil(offered / PER_ADDRESS)) },
        (_, i) => `127.0.0.${i + 1}`,
      );
      const originMs = Date.now();
      // The generator is this process alone (process.cpuUsage): a cluster it started is its child.
      const monitor = new Monitor(originMs, target.gatewayAdminUrls, () => ({
        cluster: target.clusterPids(),
        monitoring: target.monitoringPids(),
        redis: target.redisPid ? [target.redisPid] : [],
        postgres: target.postgresPid ? [target.postgresPid] : [],
      }));
      monitor.selfGroup = 'generator';
      const marks = [warmupS, warmupS + stepS].map(
        (s) => new Promise((r) => setTimeout(() => r(monitor.observe()), s * 1000)),
      );
      const samples = await runOpenLoop(
        {
          endpoint: target.endpoint,
          keys,
          scenario,
          users,
          requestsPerUserPerMinute: rate,
          durationS: warmupS + stepS,
          // The warm-up climbs from the previous step's rate (from nothing on the first step).
          fromRatePerS: previousRate,
          rampS: warmupS,
          sourceAddresses: addresses,
        },
        originMs,
      );
      await Promise.all(marks);
      const [a, b] = monitor.observations;
      const s = summarize(samples, warmupS * 1000, (warmupS + stepS) * 1000);
      const w = a && b ? serverWindow(a, b) : undefined;
      const row: CapacityRow = {
        users,
        offered_req_per_s: offered,
        achieved_req_per_s: (s.requests - s.failed) / s.seconds,
        p50_ms: s.overall.p50,
        p95_ms: s.overall.p95,
        p99_ms: s.overall.p99,
        hit_p95_ms: s.hit.p95,
        miss_p95_ms: s.miss.p95,
        server_p50_ms: w?.p50 ?? NaN,
        server_p95_ms: w?.p95 ?? NaN,
        server_p99_ms: w?.p99 ?? NaN,
        failed: s.failed,
        error_rate: s.errorRate,
        hit_rate: s.hitRate,
        cluster_cores: w?.cores.cluster ?? NaN,
        generator_cores: w?.cores.generator ?? NaN,
        redis_cores: w?.cores.redis ?? NaN,
        postgres_cores: w?.cores.postgres ?? NaN,
        other_cores: w?.cores.other ?? NaN,
      };
      rows.push(row);
      print(
        `  ${String(users).padStart(6)} users: ${num(row.achieved_req_per_s)} of ${num(offered)} req/s, p50 ${ms(row.p50_ms)}, ` +
          `p95 ${ms(row.p95_ms)} (gateways ${ms(row.server_p95_ms)}), p99 ${ms(row.p99_ms)}, ${s.failed} failed; ` +
          `cores: cluster ${num(row.cluster_cores, 2)}, generator ${num(row.generator_cores, 2)}, other ${num(row.other_cores, 2)}`,
      );
      const errors = Object.entries(s.errors).sort((x, y) => y[1] - x[1]);
      if (errors.length > 0)
        print(
          `         errors: ${errors
            .slice(0, 4)
            .map(([k, n]) => `${k} ×${n}`)
            .join('; ')}`,
        );
      if (!(row.p95_ms < BRIEF_MS)) stopped = `p95 passed ${BRIEF_MS} ms at ${users} users`;
      else if (s.failed > 0) stopped = `${s.failed} requests failed at ${users} users`;
      if (stopped) break;
      previousRate = offered;
      await new Promise((r) => setTimeout(r, 3_000)); // let queues drain before the next step
    }
  } finally {
    await removeKeys(target.config, keys, keysPath);
    await target.stop();
  }
  if (process.env.LOADTEST_DOCS !== '0') {
    writeCsv(join(docsDir, 'capacity.csv'), rows);
    writeSection(
      'loadtest-capacity',
      render(rows, stopped, ctx, target.config, steps, warmupS, stepS, keys.keys.length),
    );
    await drawPlots(print);
  }
  print(`capacity: ${stopped || 'every step stayed under 200 ms without errors'}`);
}

/** One step of the curve: a row of docs/loadtest/capacity.csv. */
type CapacityRow = {
  users: number;
  offered_req_per_s: number;
  achieved_req_per_s: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  hit_p95_ms: number;
  miss_p95_ms: number;
  server_p50_ms: number;
  server_p95_ms: number;
  server_p99_ms: number;
  failed: number;
  error_rate: number;
  hit_rate: number;
  cluster_cores: number;
  generator_cores: number;
  redis_cores: number;
  postgres_cores: number;
  other_cores: number;
};

function render(
  rows: CapacityRow[],
  stopped: string,
  ctx: ReturnType<typeof runContext>,
  config: ReturnType<typeof loadConfig>,
  steps: number[],
  warmupS: number,
  stepS: number,
  keyCount: number,
): string {
  const goal = crossing(rows, GOAL_MS);
  const brief = crossing(rows, BRIEF_MS);
  const best = rows.filter((r) => r.p95_ms < GOAL_MS && r.failed === 0).at(-1);
  const other = rows.reduce((m, r) => Math.max(m, r.other_cores ?? 0), 0);
  return [
    '## Load test: the capacity curve',
    '',
    provenance(
      ctx,
      'npm run loadtest:capacity',
      config,
      `generator: loadtest/lib/open-loop.ts (Node ${process.version}, open loop, Poisson arrivals)`,
    ),
    sharedNote(other, cpus().length).replace('on average', 'at most during a step'),
    '',
    `Users of the brief's kind (10 requests per user per minute, 80 % repeats, the scenario's endpoint mix over ` +
      `${keyCount} keys of mixed tiers, spread over loopback source addresses at ≤ ${PER_ADDRESS} req/s each) stepped through ` +
      `${steps.join(', ')}; each step ${warmupS} s of warm-up (the rate climbing from the previous step's) then ${stepS} s measured, stopping when p95 passes ${BRIEF_MS} ms or a ` +
      `request fails. Latency counts from when a request was due, so the generator's own queueing is in it. ` +
      `Server side: the gateways' histograms over the same ${stepS} s.`,
    '',
    '| users | offered req/s | answered req/s | p50 | p95 | p99 | p95 hits | p95 misses | gateways p95 | failed | hit rate | cores: cluster | generator | Redis | Postgres | other |',
    '|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    ...rows.map(
      (r) =>
        `| ${num(r.users)} | ${num(r.offered_req_per_s)} | ${num(r.achieved_req_per_s)} | ${ms(r.p50_ms)} | ${ms(r.p95_ms)} | ` +
        `${ms(r.p99_ms)} | ${ms(r.hit_p95_ms)} | ${ms(r.miss_p95_ms)} | ${ms(r.server_p95_ms)} | ${num(r.failed)} | ` +
        `${pct(r.hit_rate)} | ${num(r.cluster_cores, 2)} | ${num(r.generator_cores, 2)} | ${num(r.redis_cores, 2)} | ` +
        `${num(r.postgres_cores, 2)} | ${num(r.other_cores, 2)} |`,
    ),
    '',
    `- Stopped: ${stopped || 'no step passed 200 ms or failed a request (the list of steps ran out)'}.`,
    `- p95 crosses ${GOAL_MS} ms ${where(goal, rows)}; ${BRIEF_MS} ms ${where(brief, rows)} (interpolated on log scales between steps).`,
    best
      ? `- Largest step within our goal (p95 < ${GOAL_MS} ms, no errors): ${num(best.users)} users, ${num(best.achieved_req_per_s)} req/s; ` +
        `the cluster used ${num(best.cluster_cores, 2)} cores there, the generator ${num(best.generator_cores, 2)}.`
      : `- No step met our goal (p95 < ${GOAL_MS} ms, no errors).`,
    '',
    '![capacity curve](loadtest/capacity.svg)',
    '',
    'Data: [loadtest/capacity.csv](loadtest/capacity.csv); plots redrawn by `npm run loadtest:plots`.',
  ].join('\n');
}

/** Where a crossing lies, in words: between two steps, already at the first, or not within the steps. */
function where(users: number | undefined, rows: CapacityRow[]): string {
  if (users === undefined) return 'at no measured step';
  return users === rows[0]?.users ? `already at the first step (${num(users)} users)` : `at about ${num(users)} users`;
}

main().catch((err: unknown) => {
  print(`capacity: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
