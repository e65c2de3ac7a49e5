/**
 * `npm run bench`: requests/s and p50/p99 of the infer path through nginx at 1 and 64
 * connections, next to two ceilings measured in the same run (nginx → 2 × minimal Express,
 * nginx → 2 × bare node:http). Prints the figures and writes them to docs/BENCHMARKS.md.
 */
import { benchmarksPath, revision, writeSection } from './lib/doc-section.js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, type } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findNginx } from '../src/cluster/preflight.js';
import { expectCache, INFER_BODY, sampleBreakdown } from './breakdown.js';
import { type Stack, startCeiling } from './ceilings.js';
import { type BenchCluster, startBenchCluster } from './cluster.js';
import { killAllSync } from './lib/processes.js';
import {
  type Environment,
  errorCount,
  interpret,
  type Measurement,
  ratios,
  renderRatios,
  renderSection,
  renderTable,
  STACK_LABELS,
  type StackName,
} from './report.js';
import { runWrk } from './lib/wrk.js';
import { treeCpuMs } from './lib/proc-cpu.js';
import { Redis } from 'ioredis';

const CONNECTIONS = [1, 64] as const;
const WARMUP_S = 2;
const postLua = fileURLToPath(new URL('./post.lua', import.meta.url));
const postDistinctLua = fileURLToPath(new URL('./post-distinct.lua', import.meta.url));

const print = (line: string) => process.stdout.write(`${line}\n`);

function durationFromEnv(): number {
  const raw = process.env.BENCH_DURATION_S;
  if (raw === undefined || raw === '') return 10;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 600)
    throw new Error(`BENCH_DURATION_S must be a whole number of seconds, 1–600 (got "${raw}")`);
  return n;
}

/** `nginx -v` prints its version on stderr, `wrk -v` on stdout (and exits 1): read both, keep the first line. */
function version(bin: string, arg: string): string {
  const { stdout, stderr } = spawnSync(bin, [arg], { encoding: 'utf8' });
  const text = `${stderr ?? ''}${stdout ?? ''}`.trim();
  return (
    text
      .split('\n')[0]
      ?.replace(/^nginx version: /, '')
      .replace(/\s+Copyright.*$/, '') || bin
  );
}

// What is running now, so a signal or a crash can stop it.

let current: Stack | undefined;
let cluster: BenchCluster | undefined;
/** nginx prefixes of the ceilings. */
let workDir: string | undefined;
/** Set by the first SIGINT/SIGTERM: no new measurement starts after it. */
let interrupted = false;

/** The Redis server's process id (INFO server), to count its CPU time per request. */
async function redisPid(url: string): Promise<number> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const pid = /process_id:(\d+)/.exec(await redis.info('server'))?.[1];
    if (!pid) throw new Error('INFO server did not say the process id');
    return Number(pid);
  } finally {
    redis.disconnect();
  }
}

/**
 * Warms `stack` up, then measures it at each connection count, with the CPU time its Node
 * processes, nginx and Redis used per request (from /proc): a figure that other work on a shared
 * machine disturbs far less than requests/s.
 */
async function measure(
  stack: StackName,
  target: { url: string; headers?: Record<string, string>; script?: string },
  durationS: number,
  processes: { pids(): { node: number[]; nginx: number[] }; redis: number },
): Promise<Measurement[]> {
  const out: Measurement[] = [];
  for (const connections of CONNECTIONS) {
    if (interrupted) throw new Error('interrupted');
    // Warm-up at the measured concurrency: JIT, nginx's upstream keepalive pool, Redis connections.
    await runWrk({ ...target, connections, durationS: WARMUP_S });
    const roots = { ...processes.pids(), redis: [processes.redis] };
    const before = treeCpuMs(roots);
    const result = await runWrk({ ...target, connections, durationS });
    const after = treeCpuMs(roots);
    const perRequest = (part: keyof typeof roots) =>
      (((after[part] ?? NaN) - (before[part] ?? NaN)) * 1000) / Math.max(1, result.requests);
    const cpuUs = { node: perRequest('node'), nginx: perRequest('nginx'), redis: perRequest('redis') };
    const failed = result.non2xx + result.socketErrors;
    print(
      `  ${STACK_LABELS[stack]} -c${connections}: ${Math.round(result.requestsPerSec)} req/s, ` +
        `p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms; CPU per request: ` +
        `Node ${cpuUs.node.toFixed(0)} µs, nginx ${cpuUs.nginx.toFixed(0)} µs, Redis ${cpuUs.redis.toFixed(0)} µs` +
        (failed > 0 ? `  ⚠ ${result.non2xx} non-2xx, ${result.socketErrors} socket errors` : ''),
    );
    out.push({ stack, connections, result, cpuUs });
  }
  return out;
}

async function main(): Promise<void> {
  const durationS = durationFromEnv();
  const loadBefore = loadavg()[0] ?? NaN;
  const measured = revision();
  if (!readFileSync(postLua, 'utf8').includes(INFER_BODY))
    throw new Error(`${postLua} does not send the body breakdown.ts expects`);
  workDir = mkdtempSync(join(tmpdir(), 'skillserve-bench-ceilings-'));
  const measurements: Measurement[] = [];
  try {
    print(`bench: starting the cluster (2 gateways) on free ports…`);
    cluster = await startBenchCluster((line) => print(`  cluster: ${line}`));
    current = cluster;
    const redis = await redisPid(cluster.config.REDIS_URL);
    const nginxBin = findNginx(cluster.config);
    print(`bench: ${durationS} s per measurement after a ${WARMUP_S} s warm-up`);
    // no-cache and a different input on every request: each one is computed through the queue and
    // the skill (the infer path proper); neither the cache nor coalescing can share work.
    const computed = { ...cluster.headers, 'Cache-Control': 'no-cache' };
    await expectCache(cluster.url, computed, 'MISS');
    measurements.push(
      ...(await measure('infer', { url: cluster.url, headers: computed, script: postDistinctLua }, durationS, {
        pids: cluster.pids,
        redis,
      })),
    );
    const breakdown = await sampleBreakdown(cluster.url, computed);
    // Without it, the same body is answered from the cache the runs above filled.
    await expectCache(cluster.url, cluster.headers, 'HIT');
    measurements.push(
      ...(await measure('cached', { url: cluster.url, headers: cluster.headers, script: postLua }, durationS, {
        pids: cluster.pids,
        redis,
      })),
    );
    const limits = { ratePerIp: cluster.config.NGINX_RATE_PER_IP, burstPerIp: cluster.config.NGINX_BURST_PER_IP };
    await cluster.stop();
    current = cluster = undefined;

    for (const kind of ['express', 'http'] as const) {
      const ceiling = await startCeiling(kind, { nginxBin, workDir, ...limits });
      current = ceiling;
      measurements.push(...(await measure(kind, { url: ceiling.url }, durationS, { pids: ceiling.pids, redis })));
      await current.stop();
      current = undefined;
    }

    const env: Environment = {
      date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      revision: measured,
      cpu: cpus()[0]?.model.trim() ?? 'unknown CPU',
      cores: cpus().length,
      os: `${type()} ${release()}`,
      node: process.version,
      nginx: version(nginxBin, '-v'),
      wrk: version('wrk', '-v'),
      loadBefore,
      loadAfter: loadavg()[0] ?? NaN,
      durationS,
      warmupS: WARMUP_S,
      command: durationS === 10 ? 'npm run bench' : `BENCH_DURATION_S=${durationS} npm run bench`,
    };
    print(
      `\n${renderTable(measurements)}\n\n${renderRatios([...ratios(measurements, 64), ...ratios(measurements, 1)])}\n`,
    );
    writeSection('e2e', renderSection(env, measurements, breakdown, interpret(measurements, breakdown, env.cores)));
    print(`bench: wrote ${benchmarksPath}`);
    const errors = errorCount(measurements);
    if (errors > 0) {
      print(`bench: ⚠ ${errors} requests failed (non-2xx or socket errors); the figures are not clean.`);
      process.exitCode = 1;
    }
  } finally {
    // Reported, not thrown: an error here must not hide the one that brought us here.
    await current?.stop().catch((err: unknown) => print(`bench: cleaning up failed: ${(err as Error).message}`));
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    // A second signal means "now": the exit handler below kills what is left.
    if (interrupted) process.exit(130);
    interrupted = true;
    print(`\nbench: ${signal}, stopping every process…`);
    void (current?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}
process.on('exit', () => {
  killAllSync();
  cluster?.killSync();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

main().catch((err: unknown) => {
  // After a signal, the failures of the run being torn down are expected noise.
  if (!interrupted) process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
