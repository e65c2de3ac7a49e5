/**
 * Skill benchmark (`npm run bench:skills`): on the compute-heavy `mlp` model,
 *   1. direct gRPC Infer vs InferBatch throughput at batch sizes 1, 4, 16, 32: B concurrent
 *      Infer calls of one item against one InferBatch call of B items, rounds interleaved;
 *   2. the cost of the gRPC hop: the same InferBatch through gRPC and straight into the backend
 *      in this process, interleaved.
 * The skill server runs as a child process (bench/skill-server.ts). Prints the figures and writes
 * them into docs/BENCHMARKS.md between `<!-- bench:skills:start -->` and `<!-- bench:skills:end -->`.
 *
 *   npm run bench:skills [-- --seconds 3]
 */
import { benchmarksPath, writeSection } from './lib/doc-section.js';
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { ensureModels, MODELS_DIR } from '../test/helpers/models.js';
import { MLP_WIDTHS } from '../scripts/models/definitions.js';
import type { BackendItem } from '../src/skills/backend.js';
import { createOnnxBackend } from '../src/skills/backends/onnx/index.js';
import { SkillClient } from '../src/skills/client.js';
import type { WireInferRequest } from '../src/skills/proto.js';
import { makeTensor } from '../src/skills/tensors.js';
import { median } from './lib/stats.js';

const BATCH_SIZES = [1, 4, 16, 32];
const OVERHEAD_SIZES = [1, 32];
const WIDTH = 256;
const secondsArg = process.argv.indexOf('--seconds');
const SECONDS = secondsArg > 0 ? Number(process.argv[secondsArg + 1]) : 3;
const repository = MODELS_DIR;

const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)] ?? NaN;
const fmt = (ms: number) => (ms >= 10 ? ms.toFixed(1) : ms.toFixed(3));

/** Deterministic inputs: item i is one row of 256 values in [-1, 1). */
const values = (i: number) => Array.from({ length: WIDTH }, (_, j) => Math.sin(i * 12.9898 + j * 78.233) % 1);
const wireItem = (i: number): WireInferRequest => ({
  id: String(i),
  tensors: { tensors: [makeTensor('input', 'FP32', [1, WIDTH], values(i))] },
  parameters: { task: 'mlp', maxTokens: 0, modelVersion: '' },
});
const backendItem = (i: number): BackendItem => ({
  id: String(i),
  tensors: [makeTensor('input', 'FP32', [1, WIDTH], values(i))],
  task: 'mlp',
  maxTokens: 0,
  modelVersion: '',
});

function check(items: { error?: { code: string } | null }[]): void {
  const bad = items.find((i) => i.error?.code);
  if (bad) throw new Error(`an item failed: ${JSON.stringify(bad.error)}`);
}

/**
 * Runs each of `fns` in turn, round after round, for `seconds` (at least `minRounds`), after
 * a warm-up, and returns each one's round times in ms. Interleaving makes them share any drift.
 */
async function interleaved(fns: (() => Promise<unknown>)[], seconds: number, minRounds = 30): Promise<number[][]> {
  for (let i = 0; i < 10; i++) for (const fn of fns) await fn();
  const times = fns.map(() => [] as number[]);
  const end = performance.now() + seconds * 1000;
  for (let round = 0; round < minRounds || performance.now() < end; round++) {
    for (const [k, fn] of fns.entries()) {
      const t0 = performance.now();
      await fn();
      times[k]!.push(performance.now() - t0);
    }
  }
  return times;
}

async function startServer(): Promise<{ port: number; stop: () => void }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('./skill-server.ts', import.meta.url)), repository],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`the skill server exited (${code})`)));
  });
  return { port, stop: () => child.disconnect() };
}

async function main(): Promise<void> {
  ensureModels();
  const server = await startServer();
  const client = new SkillClient('onnx', `127.0.0.1:${server.port}`);
  const backend = createOnnxBackend({
    repository,
    only: ['mlp'],
    idleUnloadMs: 0,
    intraOpThreads: 0,
    logger: pino({ level: 'warn' }),
  });
  await backend.prepare?.();
  await backend.load();
  try {
    const throughput: string[] = [];
    for (const b of BATCH_SIZES) {
      const ids = Array.from({ length: b }, (_, i) => i);
      const [single, batch] = await interleaved(
        [
          async () => check(await Promise.all(ids.map((i) => client.infer(wireItem(i), 30_000)))),
          async () => check((await client.inferBatch(ids.map(wireItem), 30_000)).items),
        ],
        SECONDS,
      );
      const perS = (t: number[]) => (b / median(t)) * 1000;
      const row = `| ${b} | ${Math.round(perS(single!))} | ${Math.round(perS(batch!))} | ${(perS(batch!) / perS(single!)).toFixed(2)}× | ${fmt(median(single!))} / ${fmt(p90(single!))} | ${fmt(median(batch!))} / ${fmt(p90(batch!))} | ${single!.length} |`;
      throughput.push(row);
      console.log(row);
    }

    const overhead: string[] = [];
    for (const b of OVERHEAD_SIZES) {
      const ids = Array.from({ length: b }, (_, i) => i);
      const [direct, grpc] = await interleaved(
        [
          async () => check(await backend.inferBatch(ids.map(backendItem)).then((r) => r.map((x) => (x.ok ? {} : x)))),
          async () => check((await client.inferBatch(ids.map(wireItem), 30_000)).items),
        ],
        SECONDS,
      );
      const d = median(direct!);
      const g = median(grpc!);
      const row = `| ${b} | ${fmt(d)} | ${fmt(g)} | ${fmt(g - d)} | ${(((g - d) / g) * 100).toFixed(0)} % | ${direct!.length} |`;
      overhead.push(row);
      console.log(row);
    }

    const cpu = cpus();
    const weights = MLP_WIDTHS.slice(1).reduce((n, w, i) => n + (MLP_WIDTHS[i]! + 1) * w, 0);
    const markdown = `
## Skills: Infer vs InferBatch, and the gRPC hop

Reproduce: \`npm run bench:skills\` (\`-- --seconds N\` per configuration; this run: ${SECONDS} s).
Run on ${new Date().toISOString().slice(0, 10)}, ${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version},
onnxruntime-node CPU with its default threads. Model: the generated \`mlp\` (${MLP_WIDTHS.join(' → ')},
Gemm + ReLU, ${(weights / 1e6).toFixed(1)} M weights), one row per item. The skill server is a child process on 127.0.0.1; the
client is this process. Medians of rounds run interleaved, side by side in the same run, on a machine
other work may share: compare within the table, not across runs.

**Throughput.** Per round, B concurrent \`Infer\` calls of one item each, or one \`InferBatch\` call of
B items (stacked into one model run). items/s = B / median round time.

| batch B | Infer × B (items/s) | InferBatch (items/s) | InferBatch / Infer | Infer round ms (p50 / p90) | InferBatch round ms (p50 / p90) | rounds |
|--:|--:|--:|--:|--:|--:|--:|
${throughput.join('\n')}

**The gRPC hop.** The same B items through \`InferBatch\` over gRPC, and straight into the backend's
\`inferBatch\` in this process (same inputs, rounds interleaved). The difference is what the hop costs:
encoding, HTTP/2 on loopback, decoding, the server runtime.

| items per call | in process (ms, p50) | over gRPC (ms, p50) | hop (ms) | hop share of the gRPC call | rounds |
|--:|--:|--:|--:|--:|--:|
${overhead.join('\n')}
`;
    writeSection('skills', markdown);
    console.log(markdown);
    console.log(`written to ${benchmarksPath}`);
  } finally {
    client.close();
    await backend.unload();
    server.stop();
  }
}

await main();
