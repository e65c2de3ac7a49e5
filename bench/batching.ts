/**
 * Dynamic batching through the whole cluster (nginx → gateways → BullMQ → dispatcher → nlp
 * skill): saturation throughput with batching on (the defaults) and off (BATCH_MAX_SIZE=1).
 *
 * Both clusters are started side by side and loaded one at a time in alternating windows
 * (on/off, then off/on, …), so drift in the machine's background load hits both alike; an idle
 * cluster costs next to nothing. Every request is distinct and `no-store`, so each one reaches
 * the model. Besides req/s and latency it reports CPU time per request of each role, read from
 * /proc: less sensitive to other work on the machine than throughput is. Writes its section of
 * docs/BENCHMARKS.md.
 *
 *   npm run bench:batching [-- --pairs 4 --seconds 6 --warmup 8 --connections 64 --no-write]
 */
import { benchmarksPath, writeSection } from './lib/doc-section.js';
import { randomUUID } from 'node:crypto';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { http } from '../test/helpers/cluster.js';
import { type BenchCluster, startBenchCluster } from './cluster.js';
import { median } from './lib/stats.js';
import { treeCpuMs } from './lib/proc-cpu.js';
import { runWrk, type WrkResult } from './lib/wrk.js';

/**
 * A wrk script that POSTs a distinct infer request each time (a counter per thread and a nonce
 * per run in the text), so neither the cache nor request coalescing can answer it.
 */
function distinctInferScript(path: string, key: string, nonce: string): string {
  return `
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local counter = 0
local texts = {
  "I love this wonderful sunny city",
  "I hate this terrible awful place",
  "The meeting moved to Tuesday afternoon",
  "What a great and happy surprise",
}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ${key}"
wrk.headers["Cache-Control"] = "no-store"
function request()
  counter = counter + 1
  local body = string.format('{"input":"%s, run ${nonce} thread %d request %d.","task":"sentiment"}',
    texts[counter % #texts + 1], tid, counter)
  return wrk.format(nil, "${path}", nil, body)
end
`;
}

/** wrk through the cluster with distinct inputs: neither the cache nor coalescing can answer. */
function wrk(url: string, key: string, durationS: number, connections: number): Promise<WrkResult> {
  const path = new URL(url).pathname;
  return runWrk({
    url,
    connections,
    durationS,
    timeoutS: 20,
    scriptText: distinctInferScript(path, key, randomUUID()),
  });
}

const { values: args } = parseArgs({
  options: {
    pairs: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '6' },
    warmup: { type: 'string', default: '8' },
    connections: { type: 'string', default: '64' },
    'no-write': { type: 'boolean', default: false },
  },
});
const pairs = Number(args.pairs);
const seconds = Number(args.seconds);
const warmup = Number(args.warmup);
const connections = Number(args.connections);

type ModeName = 'on' | 'off';
const modes: { name: ModeName; label: string; env: Record<string, string> }[] = [
  { name: 'on', label: 'batching on (32 max, 2 ms, 2 in flight)', env: {} },
  { name: 'off', label: 'batching off (BATCH_MAX_SIZE=1)', env: { BATCH_MAX_SIZE: '1' } },
];
const roles = ['nginx', 'gateways', 'dispatcher', 'skill'] as const;

interface Window {
  wrk: WrkResult;
  batchSizes: number[];
  /** CPU ms per request, by role. */
  cpuPerRequest: Record<(typeof roles)[number], number>;
}

/** The cluster the other benchmarks start (bench/cluster.ts), with batching on or off. */
async function start(env: Record<string, string>) {
  const cluster = await startBenchCluster((line) => process.stdout.write(`  cluster: ${line}\n`), {
    REQUEST_TIMEOUT_MS: '20000',
    // The pairs compare fixed clusters: the autoscaler must not add a gateway to one of them.
    AUTOSCALE: 'off',
    ...env,
  });
  return { cluster, url: cluster.url, key: cluster.headers.Authorization!.replace(/^Bearer /, '') };
}

function rolePids(cluster: BenchCluster): Record<string, number[]> {
  const out: Record<string, number[]> = { nginx: [], gateways: [], dispatcher: [], skill: [] };
  for (const p of cluster.processes) {
    const name = p.spec.name;
    const role = name === 'nginx' ? 'nginx' : name.startsWith('gateway') ? 'gateways' : name.split('-')[0]!;
    if (p.pid && out[role]) out[role].push(p.pid);
  }
  return out;
}

/** While wrk saturates the cluster, one request every 100 ms reads the batch size it got. */
async function probe(url: string, key: string, until: number): Promise<number[]> {
  const sizes: number[] = [];
  while (Date.now() < until) {
    const res = await http(url, {
      json: { input: `Probe ${randomUUID()} says the weather is lovely.`, task: 'sentiment' },
      headers: { authorization: `Bearer ${key}`, 'cache-control': 'no-store' },
    }).catch(() => undefined);
    if (res?.status === 200) sizes.push(res.body.timings.batchSize);
    await new Promise((r) => setTimeout(r, 100));
  }
  return sizes;
}

async function window(c: Awaited<ReturnType<typeof start>>): Promise<Window> {
  const pids = rolePids(c.cluster);
  const before = treeCpuMs(pids);
  const until = Date.now() + (seconds - 0.5) * 1000;
  const [result, batchSizes] = await Promise.all([wrk(c.url, c.key, seconds, connections), probe(c.url, c.key, until)]);
  const after = treeCpuMs(pids);
  const n = Math.max(1, result.requests + batchSizes.length);
  const cpuPerRequest = Object.fromEntries(
    roles.map((r) => [r, ((after[r] ?? 0) - (before[r] ?? 0)) / n]),
  ) as Window['cpuPerRequest'];
  return { wrk: result, batchSizes, cpuPerRequest };
}

async function main(): Promise<void> {
  const clusters: Partial<Record<ModeName, Awaited<ReturnType<typeof start>>>> = {};
  const windows: Record<ModeName, Window[]> = { on: [], off: [] };
  const ratios: number[] = [];
  try {
    for (const mode of modes) {
      process.stdout.write(`starting a cluster with ${mode.label}\n`);
      clusters[mode.name] = await start(mode.env);
    }
    for (const mode of modes) {
      const c = clusters[mode.name]!;
      await wrk(c.url, c.key, warmup, connections);
    }
    for (let p = 0; p < pairs; p++) {
      const order: ModeName[] = p % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
      const got: Partial<Record<ModeName, Window>> = {};
      for (const name of order) {
        const w = await window(clusters[name]!);
        got[name] = w;
        windows[name].push(w);
        const cpu = roles.map((r) => `${r} ${w.cpuPerRequest[r].toFixed(2)}`).join(', ');
        process.stdout.write(
          `  pair ${p + 1} ${name}: ${w.wrk.requestsPerSec.toFixed(0)} req/s, p50 ${w.wrk.p50Ms.toFixed(1)} ms, ` +
            `p99 ${w.wrk.p99Ms.toFixed(1)} ms, failed ${w.wrk.non2xx + w.wrk.socketErrors}, ` +
            `batch median ${median(w.batchSizes)}, CPU ms/request: ${cpu}\n`,
        );
      }
      ratios.push(got.on!.wrk.requestsPerSec / got.off!.wrk.requestsPerSec);
    }
  } finally {
    for (const c of Object.values(clusters)) {
      await c.cluster.stop();
    }
  }
  report(windows, ratios);
}

function report(windows: Record<ModeName, Window[]>, ratios: number[]): void {
  const row = (name: ModeName) => {
    const ws = windows[name];
    const sizes = ws.flatMap((w) => w.batchSizes);
    const cpu = (r: (typeof roles)[number]) => median(ws.map((w) => w.cpuPerRequest[r]));
    return {
      rps: median(ws.map((w) => w.wrk.requestsPerSec)),
      p50: median(ws.map((w) => w.wrk.p50Ms)),
      p99: median(ws.map((w) => w.wrk.p99Ms)),
      failed: ws.reduce((a, w) => a + w.wrk.non2xx + w.wrk.socketErrors, 0),
      requests: ws.reduce((a, w) => a + w.wrk.requests, 0),
      batch: sizes.length ? `${median(sizes)} (max ${Math.max(...sizes)})` : 'n/a',
      cpu: Object.fromEntries(roles.map((r) => [r, cpu(r)])) as Record<(typeof roles)[number], number>,
    };
  };
  const on = row('on');
  const off = row('off');
  const label = (name: ModeName) => modes.find((m) => m.name === name)!.label;
  const cpu = cpus();
  const f2 = (x: number) => x.toFixed(2);
  const lines = [
    '## Dynamic batching through the cluster (nlp skill)',
    '',
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown CPU'}), ` +
      `Node ${process.version}, on a machine shared with other work. Reproduce with \`npm run bench:batching\`.`,
    '',
    `Two default clusters (2 gateways, 1 dispatcher, 1 nlp skill) run side by side, one with batching on, one with ` +
      '`BATCH_MAX_SIZE=1`, and are loaded one at a time: wrk (1 thread, ' +
      `${connections} connections, 127.0.0.1) saturates nginx for ${seconds} s windows, ${pairs} pairs alternating ` +
      `on/off and off/on, after a ${warmup} s warm-up each. Every request is a distinct \`sentiment\` request with ` +
      '`Cache-Control: no-store`, so each reaches the model. Batch size: `timings.batchSize` of probe requests sent ' +
      'every 100 ms during the windows. CPU: user + system time of each role (nginx with its workers) over the ' +
      'window, divided by the requests served. Medians over windows.',
    '',
    '| mode | req/s | p50 ms | p99 ms | batch size seen | failed / total | CPU ms/req: nginx | gateways | dispatcher | skill |',
    '| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |',
    ...(['on', 'off'] as const).map((name) => {
      const x = name === 'on' ? on : off;
      return (
        `| ${label(name)} | ${x.rps.toFixed(0)} | ${x.p50.toFixed(1)} | ${x.p99.toFixed(1)} | ${x.batch} | ` +
        `${x.failed} / ${x.requests} | ${roles.map((r) => f2(x.cpu[r])).join(' | ')} |`
      );
    }),
    '',
    `Throughput on/off, median of the ${ratios.length} pair ratios: **${f2(median(ratios))}×** ` +
      `(pairs: ${ratios.map(f2).join(', ')}). Dispatcher + skill CPU per request on/off: ` +
      `${f2((on.cpu.dispatcher + on.cpu.skill) / (off.cpu.dispatcher + off.cpu.skill))}×.`,
    '',
    'Everything (load generator, nginx, gateways, Redis, dispatcher, skill, and other people’s work) shares',
    'the same cores, so req/s says how the whole path behaves on this machine. Batching removes the per-call',
    'cost between dispatcher and skill (one gRPC call and one skill-side dispatch per batch instead of per job);',
    'the nlp model costs the same per item batched or not, and the HTTP and queue path in front of the',
    'dispatcher is unchanged, which bounds what batching can gain for this skill. Models whose per-call cost',
    'dominates (ONNX, GPU) gain more; that benchmark needs the ONNX model.',
  ];
  process.stdout.write(`\n${lines.join('\n')}\n`);
  if (!args['no-write']) {
    writeSection('batching', lines.join('\n'));
    process.stdout.write(`\nwrote ${benchmarksPath}\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
