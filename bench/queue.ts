/**
 * The queue path under load (issue 5), through the whole cluster (nginx → gateways → BullMQ →
 * dispatcher → gRPC → skill):
 *
 * 1. saturation throughput on the compute-heavy ONNX `mlp` model with dynamic batching on (the
 *    defaults) and off (BATCH_MAX_SIZE=1): two clusters side by side, loaded one at a time in
 *    alternating windows, every request distinct and `no-store`; plus latency at a moderate load
 *    next to what batching adds by design (the batch delay + one batch's compute);
 * 2. the queue path's overhead: a trivial nlp `tokens` request at one connection through the
 *    cluster, interleaved request by request with a direct gRPC Infer to the same nlp replica;
 * 3. coalescing: 100 identical concurrent requests, model runs counted with the skill's GetMetrics.
 *
 *   npm run bench:queue                       (about 3 minutes)
 *   BENCH_DURATION_S=3 npm run bench:queue    (quick: shorter windows)
 *   BENCH_NO_WRITE=1 …                        (print only, leave docs/BENCHMARKS.md alone)
 */
import { randomInt, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { SkillClient } from '../src/skills/client.js';
import { SkillRegistry } from '../src/skills/registry.js';
import { skillItemsComputed } from '../test/helpers/skill-metrics.js';
import { type BenchCluster, startBenchCluster } from './cluster.js';
import { fixed, machine, revision, writeSection } from './lib/doc-section.js';
import { median, percentile } from './lib/stats.js';
import { fixedFloats, keepAliveClient, MLP_WIDTH, mlpBody, wrkMlp } from './queue-load.js';
import { killAllSync } from './lib/processes.js';
import type { WrkResult } from './lib/wrk.js';

const durationS = Number(process.env.BENCH_DURATION_S ?? 8);
const pairs = Number(process.env.BENCH_PAIRS ?? 3);
const heavy = 64;
const moderate = 8;
const print = (line: string) => process.stdout.write(`${line}\n`);

type ModeName = 'on' | 'off';
const modes: { name: ModeName; label: string; env: Record<string, string> }[] = [
  { name: 'on', label: 'batching on (defaults)', env: {} },
  { name: 'off', label: 'batching off (BATCH_MAX_SIZE=1)', env: { BATCH_MAX_SIZE: '1' } },
];

interface Window {
  wrk: WrkResult;
  /** timings of probe requests sent during the window: batch size, model ms, gRPC round trip ms. */
  batch: number[];
  computeMs: number[];
  skillMs: number[];
}

const clusters: Partial<Record<ModeName, BenchCluster>> = {};
let interrupted = false;

/** While wrk loads the cluster, one mlp request every 200 ms reads the timings its batch had. */
async function probe(c: BenchCluster, until: number, into: Window): Promise<void> {
  const client = keepAliveClient();
  const rest = fixedFloats(MLP_WIDTH - 2);
  try {
    while (Date.now() < until) {
      const body = mlpBody(-randomInt(1, 1_000_000), randomInt(1, 1_000_000), rest);
      const headers = { ...c.headers, 'cache-control': 'no-store' };
      const res = await client.post(`${c.endpoint}/v1/skills/onnx/infer`, headers, body).catch(() => undefined);
      const t = res?.status === 200 ? res.json?.timings : undefined;
      if (t) {
        into.batch.push(t.batchSize);
        into.computeMs.push(t.computeMs);
        into.skillMs.push(t.skillMs);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    client.close();
  }
}

async function window(c: BenchCluster, connections: number): Promise<Window> {
  const w: Window = { wrk: undefined as unknown as WrkResult, batch: [], computeMs: [], skillMs: [] };
  const load = wrkMlp({ endpoint: c.endpoint, headers: c.headers, connections, durationS, nonce: randomInt(1, 1e6) });
  await probe(c, Date.now() + (durationS - 0.5) * 1000, w);
  w.wrk = await load;
  return w;
}

function describe(mode: ModeName, connections: number, w: Window): string {
  return (
    `  ${mode} @${connections}: ${fixed(w.wrk.requestsPerSec, 0)} req/s, p50 ${fixed(w.wrk.p50Ms)} ms, ` +
    `p99 ${fixed(w.wrk.p99Ms)} ms, failed ${w.wrk.non2xx + w.wrk.socketErrors}/${w.wrk.requests}, ` +
    `batch median ${median(w.batch)} (max ${w.batch.length ? Math.max(...w.batch) : 'n/a'}), ` +
    `compute median ${fixed(median(w.computeMs), 2)} ms`
  );
}

/** Part 1: alternating windows on the two clusters, at `connections`. */
async function saturation(
  connections: number,
  n: number,
): Promise<{ windows: Record<ModeName, Window[]>; ratios: number[] }> {
  const windows: Record<ModeName, Window[]> = { on: [], off: [] };
  const ratios: number[] = [];
  for (let p = 0; p < n && !interrupted; p++) {
    const order: ModeName[] = p % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
    const got: Partial<Record<ModeName, Window>> = {};
    for (const name of order) {
      const w = await window(clusters[name]!, connections);
      got[name] = windows[name][windows[name].push(w) - 1];
      print(describe(name, connections, w));
    }
    ratios.push(got.on!.wrk.requestsPerSec / got.off!.wrk.requestsPerSec);
  }
  return { windows, ratios };
}

/** The address of the live replica of `skill`, read from the cluster's registry. */
async function replicaAddress(c: BenchCluster, skill: string): Promise<string> {
  const redis = new Redis(c.config.REDIS_URL);
  try {
    const { live } = await new SkillRegistry(redis, c.config.KEY_PREFIX).snapshot();
    const replica = live.find((r) => r.name === skill);
    if (!replica) throw new Error(`no live ${skill} replica in the registry of ${c.config.KEY_PREFIX}`);
    return replica.address;
  } finally {
    redis.disconnect();
  }
}

/** Part 2: one request at a time, alternating cluster and direct gRPC, each with a distinct text. */
async function overhead(c: BenchCluster): Promise<{ cluster: number[]; direct: number[]; failed: number }> {
  const grpc = new SkillClient('nlp', await replicaAddress(c, 'nlp'));
  const http = keepAliveClient();
  const headers = { ...c.headers, 'cache-control': 'no-store' };
  const out = { cluster: [] as number[], direct: [] as number[], failed: 0 };
  const run = randomUUID().slice(0, 8);
  try {
    const until = Date.now() + 2 * durationS * 1000;
    for (let i = 0; Date.now() < until && !interrupted; i++) {
      const text = `Short text ${run} number ${i}.`;
      let t = performance.now();
      const res = await http.post(
        `${c.endpoint}/v1/skills/nlp/infer`,
        headers,
        JSON.stringify({ input: text, task: 'tokens' }),
      );
      const clusterMs = performance.now() - t;
      t = performance.now();
      await grpc.infer(
        { id: String(i), text: `${text} direct`, parameters: { task: 'tokens', maxTokens: 0, modelVersion: '' } },
        5_000,
      );
      const directMs = performance.now() - t;
      if (res.status !== 200) out.failed++;
      // The first few warm connections and JIT up on both paths.
      if (i >= 20 && res.status === 200) {
        out.cluster.push(clusterMs);
        out.direct.push(directMs);
      }
    }
  } finally {
    grpc.close();
    http.close();
  }
  return out;
}

/** Part 3: `n` identical requests at once (same input, same key); model runs by GetMetrics. */
async function coalescing(c: BenchCluster, n: number): Promise<{ runs: number; ok: number; distinctOutputs: number }> {
  const http = keepAliveClient(n);
  const headers = { ...c.headers, 'cache-control': 'no-store' };
  // Open the n connections first (distinct inputs), so the identical burst is not spread out by
  // n TCP handshakes.
  const warm = randomUUID();
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      http.post(
        `${c.endpoint}/v1/skills/nlp/infer`,
        headers,
        JSON.stringify({ input: `Warm ${warm} ${i}.`, task: 'tokens' }),
      ),
    ),
  );
  const before = await skillItemsComputed(c.config.KEY_PREFIX, 'nlp', c.config.REDIS_URL);
  const body = JSON.stringify({ input: `Coalesce these, please ${randomUUID()}.`, task: 'tokens' });
  try {
    const answers = await Promise.all(
      Array.from({ length: n }, () => http.post(`${c.endpoint}/v1/skills/nlp/infer`, headers, body)),
    );
    const after = await skillItemsComputed(c.config.KEY_PREFIX, 'nlp', c.config.REDIS_URL);
    const ok = answers.filter((a) => a.status === 200);
    return {
      runs: after - before,
      ok: ok.length,
      distinctOutputs: new Set(ok.map((a) => JSON.stringify(a.json?.output))).size,
    };
  } finally {
    http.close();
  }
}

async function main(): Promise<void> {
  const load = loadavg()
    .map((x) => x.toFixed(2))
    .join(', ');
  const mlpConfig = JSON.parse(readFileSync('models/mlp/config.json', 'utf8'));
  const delayMs: number = mlpConfig.dynamic_batching?.max_queue_delay_ms ?? 2;
  let heavyRes: Awaited<ReturnType<typeof saturation>>;
  let moderateRes: Awaited<ReturnType<typeof saturation>>;
  let over: Awaited<ReturnType<typeof overhead>>;
  const coalesced: Awaited<ReturnType<typeof coalescing>>[] = [];
  try {
    for (const mode of modes) {
      print(`starting a cluster (SKILLS=onnx,nlp) with ${mode.label}`);
      // nlp rides along (idle during part 1) for parts 2 and 3.
      clusters[mode.name] = await startBenchCluster(print, {
        SKILLS: 'onnx,nlp',
        REQUEST_TIMEOUT_MS: '20000',
        ...mode.env,
      });
    }
    print(`warm-up (${Math.min(durationS, 4)} s each)`);
    for (const mode of modes) {
      const c = clusters[mode.name]!;
      await wrkMlp({
        endpoint: c.endpoint,
        headers: c.headers,
        connections: heavy,
        durationS: Math.min(durationS, 4),
        nonce: randomInt(1, 1e6),
      });
    }
    print(`1. saturation, ${heavy} connections, ${pairs} pairs of ${durationS} s windows`);
    heavyRes = await saturation(heavy, pairs);
    print(`   moderate load, ${moderate} connections`);
    moderateRes = await saturation(moderate, Math.max(1, pairs - 1));
    print('2. queue-path overhead (nlp tokens, 1 connection, interleaved with direct gRPC)');
    over = await overhead(clusters.on!);
    print(
      `   cluster p50 ${fixed(median(over.cluster), 2)} ms / direct p50 ${fixed(median(over.direct), 2)} ms over ${over.cluster.length} each`,
    );
    print('3. coalescing: 100 identical concurrent requests, 3 trials');
    for (let i = 0; i < 3; i++) {
      const r = await coalescing(clusters.on!, 100);
      coalesced.push(r);
      print(`   trial ${i + 1}: ${r.ok}/100 answered 200, model runs ${r.runs}, distinct outputs ${r.distinctOutputs}`);
    }
  } finally {
    for (const name of Object.keys(clusters) as ModeName[]) {
      const c = clusters[name]!;
      // Out of the map first: the exit handler must not SIGKILL pids that may be reused by then.
      delete clusters[name];
      await c.stop().catch((err: unknown) => print(`cleanup failed: ${(err as Error).message}`));
    }
  }
  const lines = report({ heavyRes, moderateRes, over, coalesced, delayMs, load });
  print(`\n${lines}`);
  if (!process.env.BENCH_NO_WRITE) {
    writeSection('queue', lines);
    print('\nwrote docs/BENCHMARKS.md (bench:queue section)');
  }
}

function report(r: {
  heavyRes: Awaited<ReturnType<typeof saturation>>;
  moderateRes: Awaited<ReturnType<typeof saturation>>;
  over: Awaited<ReturnType<typeof overhead>>;
  coalesced: Awaited<ReturnType<typeof coalescing>>[];
  delayMs: number;
  load: string;
}): string {
  const row = (ws: Window[], label: string, connections: number) => {
    const failed = ws.reduce((a, w) => a + w.wrk.non2xx + w.wrk.socketErrors, 0);
    const total = ws.reduce((a, w) => a + w.wrk.requests, 0);
    const batch = ws.flatMap((w) => w.batch);
    const compute = ws.flatMap((w) => w.computeMs);
    const skill = ws.flatMap((w) => w.skillMs);
    return (
      `| ${label} | ${connections} | ${fixed(median(ws.map((w) => w.wrk.requestsPerSec)), 0)} | ` +
      `${fixed(median(ws.map((w) => w.wrk.p50Ms)))} | ${fixed(median(ws.map((w) => w.wrk.p99Ms)))} | ` +
      `${batch.length ? `${median(batch)} (max ${Math.max(...batch)})` : 'n/a'} | ${fixed(median(compute), 2)} | ` +
      `${fixed(median(skill), 2)} | ${failed} / ${total} |`
    );
  };
  const label = (name: ModeName) => modes.find((m) => m.name === name)!.label;
  const ratio = median(r.heavyRes.ratios);
  const modOn = r.moderateRes.windows.on;
  const modCompute = median(modOn.flatMap((w) => w.computeMs));
  const modP99 = median(modOn.map((w) => w.wrk.p99Ms));
  const modOffP99 = median(r.moderateRes.windows.off.map((w) => w.wrk.p99Ms));
  const budget = r.delayMs + modCompute;
  const addedP99 = modP99 - modOffP99;
  const o = r.over;
  const d = (p: number) => percentile(o.cluster, p) - percentile(o.direct, p);
  return [
    '## The queue path: batching on the ONNX mlp, overhead, coalescing',
    '',
    `Measured ${new Date().toISOString()} at commit ${revision()} on ${machine()}; load average before the run ` +
      `${r.load} (a machine shared with other work). Reproduce with \`npm run bench:queue\` ` +
      `(this run: BENCH_DURATION_S=${durationS}, BENCH_PAIRS=${pairs}).`,
    '',
    '### 1. Saturation throughput, ONNX `mlp` (FP32 [1, 256] per request)',
    '',
    'Two clusters (2 gateways, 1 dispatcher, skills onnx + nlp), one with the batching defaults, one with ' +
      '`BATCH_MAX_SIZE=1`, side by side; loaded one at a time by wrk (1 thread, 127.0.0.1) in ' +
      `${durationS} s windows alternating on/off and off/on, after a warm-up. Every request is distinct (the ` +
      'first two floats are a counter and a per-window nonce) and `Cache-Control: no-store`, so each one ' +
      'reaches the model. Batch size, model compute (`timings.computeMs`, one batch) and the dispatcher→skill ' +
      'gRPC round trip (`timings.skillMs`) are read from probe requests sent every 200 ms during the windows. ' +
      'Medians over windows.',
    '',
    '| mode | connections | req/s | p50 ms | p99 ms | batch size seen | batch compute ms | gRPC round trip ms | failed / total |',
    '| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |',
    row(r.heavyRes.windows.on, label('on'), heavy),
    row(r.heavyRes.windows.off, label('off'), heavy),
    row(r.moderateRes.windows.on, label('on'), moderate),
    row(r.moderateRes.windows.off, label('off'), moderate),
    '',
    `Throughput on/off at ${heavy} connections, median of the ${r.heavyRes.ratios.length} pair ratios: ` +
      `**${fixed(ratio, 2)}×** (pairs: ${r.heavyRes.ratios.map((x) => fixed(x, 2)).join(', ')}); the target ` +
      `is ≥ 3×: ${ratio >= 3 ? 'met' : 'not met'}.`,
    '',
    `Latency at moderate load (${moderate} connections): batching may add up to the batch delay ` +
      `(max_queue_delay_ms ${r.delayMs}) + one batch's compute (${fixed(modCompute, 2)} ms) = ` +
      `**${fixed(budget, 2)} ms** to a request by design. p99 with batching on is ${fixed(modP99)} ms against ` +
      `${fixed(modOffP99)} ms with it off at the same load: batching ${addedP99 <= 0 ? 'lowers' : 'raises'} p99 by ` +
      `${fixed(Math.abs(addedP99))} ms, ${addedP99 <= budget ? 'within' : 'beyond'} that budget. The rest of either ` +
      'p99 is the HTTP and queue path (part 2) and waiting behind other requests on shared cores.',
    '',
    '### 2. Queue-path overhead (nlp `tokens`, one connection)',
    '',
    'One request at a time, alternating a request through the cluster (keep-alive HTTP to nginx, distinct ' +
      'short text, `no-store`) with a direct gRPC Infer (SkillClient) to the same nlp replica, found in the ' +
      `registry; ${o.cluster.length} of each after 20 warm-up pairs, ${o.failed} failed. Client: Node in the ` +
      'bench process for both.',
    '',
    '| path | p50 ms | p99 ms |',
    '| --- | ---: | ---: |',
    `| nginx → gateway → BullMQ → dispatcher → gRPC → nlp | ${fixed(percentile(o.cluster, 50), 2)} | ${fixed(percentile(o.cluster, 99), 2)} |`,
    `| direct gRPC Infer → nlp | ${fixed(percentile(o.direct, 50), 2)} | ${fixed(percentile(o.direct, 99), 2)} |`,
    `| **queue path overhead** (difference) | **${fixed(d(50), 2)}** | **${fixed(d(99), 2)}** |`,
    '',
    '### 3. Coalescing',
    '',
    '100 identical concurrent requests (same input, same key, `no-store`) on 100 keep-alive connections opened ' +
      'beforehand, on the batching-on ' +
      'cluster; model runs = the nlp replica’s GetMetrics `itemsTotal` after minus before. Three trials, a new ' +
      'input each:',
    '',
    '| trial | answered 200 | distinct outputs | model runs |',
    '| ---: | ---: | ---: | ---: |',
    ...r.coalesced.map((c, i) => `| ${i + 1} | ${c.ok} / 100 | ${c.distinctOutputs} | ${c.runs} |`),
    '',
    'A request joins the job of an identical one if it reached nginx before that job finished (nginx stamps ' +
      'X-Request-Start), even when a busy gateway gets to it later; one that reached nginx after the job ' +
      'finished is a new request and runs the model again.',
  ].join('\n');
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    print(`\nbench: ${signal}, stopping every process…`);
    void Promise.allSettled(Object.values(clusters).map((c) => c.stop())).finally(() => process.exit(130));
  });
}
process.on('exit', () => {
  killAllSync();
  for (const c of Object.values(clusters)) {
    try {
      c.killSync();
    } catch {
      // Already gone.
    }
  }
});

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
