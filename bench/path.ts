/**
 * The request path (issue 16): skillserve against what a user could write instead, in one run.
 *
 * - skillserve: the whole cluster through nginx, everything on (key check, rate limit, cache
 *   read and write, coalescing, deadlines, priorities, two gateways); `queue-only` is the same
 *   cluster with QUEUE_BYPASS_WHEN_IDLE=false, every request through BullMQ;
 * - baseline: the idiomatic BullMQ app (bench/path-baseline.ts: Express + queue.add +
 *   job.waitUntilFinished(queueEvents); a Worker process of concurrency 16 calling Infer);
 * - direct: gRPC Infer straight to the replica (bench/path-grpc.ts).
 *
 * All three call the same nlp replica (`sentiment`), every input distinct, `Cache-Control:
 * no-cache`; windows at 1 connection (latency) and 64 (throughput) alternate between the
 * systems, round after round. Everything runs on a Redis of the bench's own, so its CPU time and
 * INFO commandstats belong to this run alone: CPU ms per request per process (from /proc) and
 * Redis commands per request.
 *
 *   npm run bench:path                        (about 3 minutes)
 *   BENCH_DURATION_S=3 BENCH_ROUNDS=1 …       (quick)
 *   BENCH_NO_WRITE=1 …                        (print only, leave docs/BENCHMARKS.md alone)
 *   BENCH_PORT_BASE=11100 …                   (ports used: base … base+19)
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomInt, randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { SkillRegistry } from '../src/skills/registry.js';
import { type BenchCluster, startBenchCluster } from './cluster.js';
import { fixed, machine, revision, writeSection } from './lib/doc-section.js';
import { killAllSync, stopChild, track } from './lib/processes.js';
import { treeCpuMs } from './lib/proc-cpu.js';
import { median } from './lib/stats.js';
import type { WrkResult } from './lib/wrk.js';
import { commandStats, ownRedis } from './path-redis.js';
import { phaseBreakdown, type Phases, wrkDistinct } from './path-phases.js';

const durationS = Number(process.env.BENCH_DURATION_S ?? 6);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const portBase = Number(process.env.BENCH_PORT_BASE ?? 11100);
const CONNECTIONS = [1, 64] as const;
const print = (line: string) => process.stdout.write(`${line}\n`);
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

interface System {
  name: string;
  /** Load for one window. */
  load(connections: number, nonce: number): Promise<WrkResult>;
  /** Its processes by part, for CPU per request. */
  parts(): Record<string, number[]>;
}

interface Figures {
  wrk: WrkResult;
  cpuMsPerReq: Record<string, number>;
  redisCmdsPerReq: number;
  topCmds: [string, number][];
  meanBatch?: number;
}

const children: ChildProcess[] = [];

/** Forks `file` with `args` and env, and waits for its first IPC message. */
function forkChild<T>(
  file: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; msg: T }> {
  const child = track(
    fork(here(file), args, { env: { ...process.env, ...env }, execArgv: ['--import', 'tsx'], stdio: 'inherit' }),
  );
  return new Promise((resolve, reject) => {
    child.once('message', (msg) => resolve({ child, msg: msg as T }));
    child.once('exit', (code) => reject(new Error(`${file} exited (${code}) before reporting`)));
  });
}

async function replicaAddress(c: BenchCluster): Promise<string> {
  const redis = new Redis(c.config.REDIS_URL);
  try {
    const { live } = await new SkillRegistry(redis, c.config.KEY_PREFIX).snapshot();
    const replica = live.find((r) => r.name === 'nlp');
    if (!replica) throw new Error('no live nlp replica');
    return replica.address;
  } finally {
    redis.disconnect();
  }
}

/** Sum and count of the dispatcher's batch-size histogram, read from its admin port. */
async function batchTotals(c: BenchCluster): Promise<{ sum: number; count: number }> {
  let sum = 0;
  let count = 0;
  for (const [name, port] of c.adminPorts()) {
    if (!name.startsWith('dispatcher')) continue;
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const m of text.matchAll(/^skillserve_batch_size_jobs_(sum|count)\{[^}]*\} ([\d.e+]+)$/gm)) {
      if (m[1] === 'sum') sum += Number(m[2]);
      else count += Number(m[2]);
    }
  }
  return { sum, count };
}

function clusterParts(c: BenchCluster): Record<string, number[]> {
  const out: Record<string, number[]> = { gateways: [], dispatcher: [], skill: [], nginx: [] };
  for (const p of c.processes) {
    if (!p.pid) continue;
    const part = p.spec.name.startsWith('gateway')
      ? 'gateways'
      : p.spec.name.startsWith('dispatcher')
        ? 'dispatcher'
        : p.spec.name.startsWith('skill')
          ? 'skill'
          : p.spec.name === 'nginx'
            ? 'nginx'
            : undefined;
    if (part) out[part]!.push(p.pid);
  }
  return out;
}

async function window(s: System, connections: number, redis: { url: string; pid: number }, cluster?: BenchCluster) {
  const parts = { ...s.parts(), redis: [redis.pid] };
  const cpu0 = treeCpuMs(parts);
  const cmd0 = await commandStats(redis.url);
  const b0 = cluster ? await batchTotals(cluster) : undefined;
  const wrk = await s.load(connections, randomInt(1, 1e9));
  const cpu1 = treeCpuMs(parts);
  const cmd1 = await commandStats(redis.url);
  const b1 = cluster ? await batchTotals(cluster) : undefined;
  const n = Math.max(1, wrk.requests);
  const cpuMsPerReq = Object.fromEntries(Object.keys(parts).map((k) => [k, (cpu1[k]! - cpu0[k]!) / n]));
  const deltas = [...cmd1].map(([c, calls]): [string, number] => [c, (calls - (cmd0.get(c) ?? 0)) / n]);
  // The INFO calls of this measurement are not the system's.
  const own = deltas.filter(([c]) => c !== 'info');
  const figures: Figures = {
    wrk,
    cpuMsPerReq,
    redisCmdsPerReq: own.reduce((sum, [, x]) => sum + x, 0),
    topCmds: own.sort((a, b) => b[1] - a[1]).slice(0, 6),
    meanBatch: b0 && b1 && b1.count > b0.count ? (b1.sum - b0.sum) / (b1.count - b0.count) : undefined,
  };
  return figures;
}

const total = (f: Figures) => Object.values(f.cpuMsPerReq).reduce((a, b) => a + b, 0);
const describe = (name: string, c: number, f: Figures) =>
  `  ${name.padEnd(10)} @${String(c).padStart(2)}: ${fixed(f.wrk.requestsPerSec, 0).padStart(5)} req/s, ` +
  `p50 ${fixed(f.wrk.p50Ms, 2)} ms, p99 ${fixed(f.wrk.p99Ms, 2)} ms, failed ${f.wrk.non2xx + f.wrk.socketErrors}, ` +
  `CPU ${fixed(total(f), 3)} ms/req (${Object.entries(f.cpuMsPerReq)
    .map(([k, v]) => `${k} ${fixed(v, 3)}`)
    .join(', ')}), ` +
  `Redis ${fixed(f.redisCmdsPerReq, 1)} cmds/req` +
  (f.meanBatch !== undefined ? `, mean batch ${fixed(f.meanBatch, 1)}` : '');

async function main(): Promise<void> {
  const loadBefore = loadavg()
    .map((x) => x.toFixed(2))
    .join(', ');
  const redis = await ownRedis(portBase);
  print(`own Redis on port ${portBase}; starting the cluster (nlp, 2 gateways, 1 dispatcher)`);
  // Both settings of the idle bypass: the defaults, and every request through the queue.
  const variants: { name: string; env: Record<string, string> }[] = [
    { name: 'skillserve', env: {} },
    ...(process.env.BENCH_ONE_CLUSTER ? [] : [{ name: 'queue-only', env: { QUEUE_BYPASS_WHEN_IDLE: 'false' } }]),
  ];
  const clusters: BenchCluster[] = [];
  const results = new Map<string, Figures[]>();
  const phases: Record<string, Phases> = {};
  try {
    for (const [i, v] of variants.entries()) {
      const base = portBase + 2 + i * 6;
      clusters.push(
        await startBenchCluster(print, {
          REDIS_URL: redis.url,
          PUBLIC_PORT: String(base),
          GATEWAY_BASE_PORT: String(base + 1),
          NGINX_STATUS_PORT: String(base + 4),
          ...v.env,
        }),
      );
    }
    const first = clusters[0]!;
    const address = await replicaAddress(first);
    const queue = `path-baseline-${randomUUID()}`;
    // NODE_NO_WARNINGS: BullMQ's listener-count warnings under 64 connections are noise here.
    const baseEnv = { BENCH_REDIS_URL: redis.url, BENCH_QUEUE: queue, NODE_NO_WARNINGS: '1' };
    const baselinePort = portBase + 18;
    const server = await forkChild(here('./path-baseline.ts'), ['server', String(baselinePort)], baseEnv);
    const worker = await forkChild(here('./path-baseline.ts'), ['worker', address], baseEnv);
    children.push(server.child, worker.child);
    const skillPid = clusterParts(first).skill!;
    const noCache = { 'Cache-Control': 'no-cache' };
    const systems: System[] = [
      ...variants.map((v, i): System => {
        const c = clusters[i]!;
        return {
          name: v.name,
          load: (conns, nonce) =>
            wrkDistinct({
              url: c.url,
              path: '/v1/skills/nlp/infer',
              headers: { ...c.headers, ...noCache },
              connections: conns,
              durationS,
              nonce,
            }),
          // The cluster's own processes (the first cluster's skill also serves the baseline and direct calls).
          parts: () => clusterParts(c),
        };
      }),
      {
        name: 'baseline',
        load: (conns, nonce) =>
          wrkDistinct({
            url: `http://127.0.0.1:${baselinePort}/infer`,
            path: '/infer',
            headers: noCache,
            connections: conns,
            durationS,
            nonce,
          }),
        parts: () => ({ express: [server.child.pid!], worker: [worker.child.pid!], skill: skillPid }),
      },
      {
        name: 'direct',
        load: async (conns, nonce) => {
          const { child, msg } = await forkChild<{
            requests: number;
            failed: number;
            p50Ms: number;
            p99Ms: number;
            requestsPerSec: number;
          }>(here('./path-grpc.ts'), [address, String(conns), String(durationS), String(nonce)]);
          await stopChild(child);
          return { ...msg, non2xx: msg.failed, socketErrors: 0 };
        },
        parts: () => ({ skill: skillPid }),
      },
    ];
    print(`warm-up: ${durationS} s at 16 connections each`);
    for (const s of systems.slice(0, -1)) await s.load(16, randomInt(1, 1e9));
    for (let r = 0; r < rounds; r++) {
      for (const c of CONNECTIONS) {
        // Rotate the order each round, so no system always runs first (or right after another).
        const order = systems.map((_, i) => systems[(i + r) % systems.length]!);
        for (const s of order) {
          const cluster = variants.findIndex((v) => v.name === s.name);
          const f = await window(s, c, redis, cluster >= 0 ? clusters[cluster] : undefined);
          const key = `${s.name}@${c}`;
          results.set(key, [...(results.get(key) ?? []), f]);
          print(describe(s.name, c, f));
        }
      }
    }
    for (const [i, v] of variants.entries()) {
      const byConns = await phaseBreakdown(clusters[i]!, durationS);
      for (const [c, p] of Object.entries(byConns)) phases[`${v.name}, ${c} connection${c === '1' ? '' : 's'}`] = p;
    }
  } finally {
    for (const c of clusters) await c.stop().catch((err: unknown) => print(`cluster stop: ${(err as Error).message}`));
    for (const child of children) await stopChild(child);
    // Last: everything above holds connections to it.
    await stopChild(redis.child);
  }
  const loadAfter = loadavg()
    .map((x) => x.toFixed(2))
    .join(', ');
  report(
    variants.map((v) => v.name),
    results,
    phases,
    loadBefore,
    loadAfter,
  );
}

function report(
  clusterNames: string[],
  results: Map<string, Figures[]>,
  phases: Record<string, Phases>,
  loadBefore: string,
  loadAfter: string,
): void {
  const med = (key: string, f: (x: Figures) => number | undefined) =>
    median((results.get(key) ?? []).map(f).filter((x): x is number => x !== undefined && Number.isFinite(x)));
  const names = [...clusterNames, 'baseline', 'direct'];
  const rows = names.map((n) => {
    const p50 = med(`${n}@1`, (f) => f.wrk.p50Ms);
    const rps = med(`${n}@64`, (f) => f.wrk.requestsPerSec);
    const cpu = med(`${n}@64`, total);
    const cmds = med(`${n}@64`, (f) => f.redisCmdsPerReq);
    const batch = med(`${n}@64`, (f) => f.meanBatch);
    const parts = Object.keys(results.get(`${n}@64`)?.[0]?.cpuMsPerReq ?? {})
      .map(
        (k) =>
          `${k} ${fixed(
            med(`${n}@64`, (f) => f.cpuMsPerReq[k]),
            3,
          )}`,
      )
      .join(', ');
    const top = (results.get(`${n}@64`)?.[0]?.topCmds ?? []).map(([c, x]) => `${c} ${fixed(x, 1)}`).join(', ');
    return { n, p50, rps, cpu, cmds, batch, parts, top };
  });
  const lines = [
    `| system | p50 @1 conn (ms) | req/s @64 conns | CPU ms/req @64 (all processes) | per process @64 | Redis cmds/req @64 | top Redis commands/req @64 | mean batch @64 |`,
    `|---|---:|---:|---:|---|---:|---|---:|`,
    ...rows.map(
      (r) =>
        `| ${r.n} | ${fixed(r.p50, 2)} | ${fixed(r.rps, 0)} | ${fixed(r.cpu, 3)} | ${r.parts} | ${fixed(r.cmds, 1)} | ${r.top || '–'} | ${r.batch !== undefined && Number.isFinite(r.batch) ? fixed(r.batch, 1) : '–'} |`,
    ),
    '',
    ...clusterNames.map((n) => {
      // Ratios within each round (the windows compared ran next to each other), then their median:
      // on a shared machine the load changes between rounds more than between neighbours.
      const paired = (a: string, b: string, f: (x: Figures) => number) => {
        const xs = results.get(a) ?? [];
        const ys = results.get(b) ?? [];
        const rs = xs.map((x, i) => (ys[i] ? f(x) / f(ys[i]!) : NaN)).filter(Number.isFinite);
        return `${fixed(median(rs), 2)} × (rounds: ${rs.map((r) => fixed(r, 2)).join(', ')})`;
      };
      const p50 = (f: Figures) => f.wrk.p50Ms;
      const rps = (f: Figures) => f.wrk.requestsPerSec;
      return (
        `- **${n}**: p50 at 1 connection ${paired(`${n}@1`, 'direct@1', p50)} direct gRPC's (target ≤ 2.5 ×) and ` +
        `${paired(`${n}@1`, 'baseline@1', p50)} the baseline's (target ≤ 0.8 ×); throughput at 64 connections ` +
        `${paired(`${n}@64`, 'baseline@64', rps)} the baseline's (target ≥ 1.5 ×).`
      );
    }),
  ];
  const phaseLines = Object.entries(phases).map(
    ([label, p]) =>
      `- ${label}: ` +
      Object.entries(p)
        .map(([k, v]) => `${k} ${fixed(v, 2)}`)
        .join(', ') +
      ' (ms, medians)',
  );
  const body = [
    '## Request path: skillserve vs a plain BullMQ app vs direct gRPC',
    '',
    'Command: `npm run bench:path` (bench/path.ts). The same nlp replica (`sentiment`) behind all three: the whole',
    'cluster through nginx with everything on (`queue-only`: the same with `QUEUE_BYPASS_WHEN_IDLE=false`); the idiomatic BullMQ app (Express + `queue.add` +',
    '`job.waitUntilFinished(queueEvents)`, a Worker process of concurrency 16 calling gRPC `Infer`); a direct gRPC `Infer`.',
    `Every input distinct, \`Cache-Control: no-cache\`; ${rounds} rounds of ${durationS} s windows, systems alternating,`,
    'medians quoted. CPU per request from /proc (each process and its children), Redis commands per request from',
    "INFO commandstats of the bench's own Redis (nothing else uses it).",
    '',
    ...lines,
    '',
    ...(phaseLines.length
      ? [
          "Where a request's time goes (the answers' `Server-Timing` phases and `timings`; `client` is the round trip",
          'the client saw; at 64 connections one probing client next to 63 wrk connections):',
          '',
          ...phaseLines,
          '',
        ]
      : []),
    `Measured on ${machine()}, revision ${revision()}, ${new Date().toISOString().slice(0, 10)}. Load average before`,
    `${loadBefore}, after ${loadAfter}: other processes (other sessions' tests) shared the 2 cores.`,
  ].join('\n');
  print(`\n${body}`);
  if (!process.env.BENCH_NO_WRITE) writeSection('path', body);
}

process.once('SIGINT', () => {
  killAllSync();
  process.exit(130);
});
main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  killAllSync();
  process.exit(1);
});
