/**
 * Model variants benchmark (`npm run bench:variants`): for `mlp` and `embedder`, each variant
 * (FP32, FP16, INT8) side by side in one run: file size, load time, the skill replica's
 * resident memory once loaded, latency at batch 1 and 32 (p50 / p99, rounds interleaved across
 * the variants), throughput at saturation with the replica's CPU per row, and agreement with
 * FP32 on inputs the project generates. Each variant runs in its own skill replica (a child
 * process, bench/skill-server.ts) whose repository holds that variant alone, so its memory is
 * its own. Writes docs/BENCHMARKS.md between `<!-- bench:model-variants:start -->` and `…:end -->`.
 *
 *   npm run bench:variants [-- --seconds 3]
 */
import { spawn } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  EMBEDDER_VOCAB,
  EMBEDDER_WIDTH,
  MLP_WIDTHS,
  VARIANT_FILES,
  type VariantName,
} from '../scripts/models/definitions.js';
import { openSession } from '../src/skills/backends/onnx/session.js';
import { SkillClient } from '../src/skills/client.js';
import type { WireInferRequest, WireInferResponse } from '../src/skills/proto.js';
import { makeTensor, tensorValues } from '../src/skills/tensors.js';
import { agreement, ensureModels, MODELS_DIR, row } from '../test/helpers/models.js';
import { benchmarksPath, fixed, machine, revision, writeSection } from './lib/doc-section.js';
import { treeCpuMs } from './lib/proc-cpu.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SECONDS = arg('seconds', 3);
const VARIANTS = Object.keys(VARIANT_FILES) as VariantName[];
const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))] ?? NaN;
const ms = (x: number) => (x >= 10 ? fixed(x, 1) : fixed(x, 2));
const mb = (bytes: number) => fixed(bytes / 2 ** 20, bytes < 2 ** 20 ? 2 : 1);

/** What a model's rows look like to the benchmark: its input tensor and output width. */
interface Workload {
  model: 'mlp' | 'embedder';
  /** Item `i` of the agreement set, of `rows` rows. */
  item: (task: string, i: number, rows: number) => WireInferRequest;
  outWidth: number;
  /** Items in the agreement set (of 32 rows each). */
  agreementItems: number;
}

const request = (id: string, task: string, tensor: ReturnType<typeof makeTensor>): WireInferRequest => ({
  id,
  tensors: { tensors: [tensor] },
  parameters: { task, maxTokens: 0, modelVersion: '' },
});

const WORKLOADS: Workload[] = [
  {
    model: 'mlp',
    item: (task, i, rows) =>
      request(
        String(i),
        task,
        makeTensor(
          'input',
          'FP32',
          [rows, MLP_WIDTHS[0]],
          Array.from({ length: rows }, (_, r) => row(MLP_WIDTHS[0], 100_000 + i * rows + r)).flat(),
        ),
      ),
    outWidth: MLP_WIDTHS[MLP_WIDTHS.length - 1]!,
    agreementItems: 128, // 4,096 rows
  },
  {
    model: 'embedder',
    // Token sequences of 1..16 ids (one length per item, as requests of one length stack).
    item: (task, i, rows) => {
      const length = 1 + (i % 16);
      const ids = Array.from({ length: rows * length }, (_, k) => (i * 7919 + k * 104_729) % EMBEDDER_VOCAB);
      return request(String(i), task, makeTensor('ids', 'INT64', [rows, length], ids));
    },
    outWidth: EMBEDDER_WIDTH,
    agreementItems: 64, // 2,048 sequences
  },
];

function check(res: WireInferResponse): number[] {
  if (res.error?.code) throw new Error(`${res.id}: ${res.error.code} ${res.error.message}`);
  return tensorValues(res.tensors!.tensors[0]!) as number[];
}

/** A repository holding one variant of one model, its file hard-linked from models/ (read only). */
function variantRepository(root: string, model: string, variant: VariantName): string {
  const dir = join(root, `${model}-${variant}`);
  mkdirSync(join(dir, model, '1'), { recursive: true });
  const config = JSON.parse(readFileSync(join(MODELS_DIR, model, 'config.json'), 'utf8'));
  const file = VARIANT_FILES[variant];
  writeFileSync(
    join(dir, model, 'config.json'),
    JSON.stringify({ ...config, variants: { [variant]: config.variants[variant] }, default_variant: variant }),
  );
  try {
    linkSync(join(MODELS_DIR, model, '1', file), join(dir, model, '1', file));
  } catch {
    copyFileSync(join(MODELS_DIR, model, '1', file), join(dir, model, '1', file));
  }
  return dir;
}

interface Replica {
  variant: VariantName;
  task: string;
  pid: number;
  client: SkillClient;
  stop: () => void;
}

async function startReplica(repository: string, model: string, variant: VariantName): Promise<Replica> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('./skill-server.ts', import.meta.url)), repository, model],
    {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`the skill server exited (${code})`)));
  });
  const client = new SkillClient('onnx', `127.0.0.1:${port}`);
  return {
    variant,
    task: `${model}:${variant}`,
    pid: child.pid!,
    client,
    stop: () => (client.close(), child.disconnect()),
  };
}

/** Calls `call(replica)` for each replica in turn, round after round, for `seconds` (at least `minRounds`). */
async function interleaved(
  replicas: Replica[],
  call: (r: Replica) => Promise<unknown>,
  seconds: number,
  minRounds: number,
) {
  for (let i = 0; i < 5; i++) for (const r of replicas) await call(r);
  const times = replicas.map(() => [] as number[]);
  const end = performance.now() + seconds * 1000;
  for (let round = 0; round < minRounds || performance.now() < end; round++) {
    for (const [k, r] of replicas.entries()) {
      const t0 = performance.now();
      await call(r);
      times[k]!.push(performance.now() - t0);
    }
  }
  return times;
}

/**
 * Rows per second with `concurrency` InferBatch calls of 32 items in flight, and the replica's
 * CPU per row: each variant in turn for one-second slices, round after round, `seconds` each in
 * all, so that every variant sees the same drift in what else the machine is doing.
 */
async function saturate(w: Workload, replicas: Replica[], seconds: number, concurrency = 4) {
  const totals = replicas.map(() => ({ rows: 0, ms: 0, cpuMs: 0 }));
  for (let slice = 0; slice < Math.max(1, Math.round(seconds)); slice++) {
    for (const [k, r] of replicas.entries()) {
      const batch = Array.from({ length: 32 }, (_, i) => w.item(r.task, i, 1));
      const cpu0 = treeCpuMs({ r: [r.pid] }).r!;
      const t0 = performance.now();
      const end = t0 + 1000;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (performance.now() < end) {
            const res = await r.client.inferBatch(batch, 60_000);
            res.items.forEach(check);
            totals[k]!.rows += res.items.length;
          }
        }),
      );
      totals[k]!.ms += performance.now() - t0;
      totals[k]!.cpuMs += treeCpuMs({ r: [r.pid] }).r! - cpu0;
    }
  }
  return Object.fromEntries(
    replicas.map((r, k) => {
      const t = totals[k]!;
      return [r.variant, { rowsPerS: (t.rows / t.ms) * 1000, cpuMsPerRow: t.cpuMs / t.rows }];
    }),
  );
}

async function measure(w: Workload, root: string) {
  const files = Object.fromEntries(VARIANTS.map((v) => [v, join(MODELS_DIR, w.model, '1', VARIANT_FILES[v])]));
  const sizes = Object.fromEntries(VARIANTS.map((v) => [v, statSync(files[v]!).size]));
  // Load time: onnxruntime session creation with the skill's settings, median of 3, in this process.
  const loadMs: Record<string, number> = {};
  for (const v of VARIANTS) {
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const session = await openSession(files[v]!, { intraOpThreads: 0 });
      times.push(performance.now() - t0);
      await session.release();
    }
    loadMs[v] = quantile(times, 0.5);
  }
  const replicas: Replica[] = [];
  try {
    for (const v of VARIANTS) replicas.push(await startReplica(variantRepository(root, w.model, v), w.model, v));
    const rssBefore: Record<string, number> = {};
    for (const r of replicas) rssBefore[r.variant] = Number((await r.client.metrics(5_000)).rssBytes);
    const one = await interleaved(
      replicas,
      async (r) => check(await r.client.infer(w.item(r.task, 1, 1), 60_000)),
      SECONDS,
      200,
    );
    const batch32 = Array.from({ length: 32 }, (_, i) => w.item('', i, 1));
    const thirtyTwo = await interleaved(
      replicas,
      async (r) =>
        (
          await r.client.inferBatch(
            batch32.map((b) => ({ ...b, parameters: { ...b.parameters!, task: r.task } })),
            60_000,
          )
        ).items.forEach(check),
      SECONDS,
      60,
    );
    const rss: Record<string, number> = {};
    for (const r of replicas) rss[r.variant] = Number((await r.client.metrics(5_000)).rssBytes);
    const saturation = await saturate(w, replicas, SECONDS);

    // Agreement with FP32 on the same items; and, per variant, rows computed together in one
    // run against the same rows each computed alone.
    const outputs: Record<string, number[]> = {};
    const batchInvariance: Record<string, number> = {};
    for (const r of replicas) {
      const all: number[] = [];
      for (let i = 0; i < w.agreementItems; i++)
        all.push(...check(await r.client.infer(w.item(r.task, i, 32), 60_000)));
      outputs[r.variant] = all;
      const together = w.item(r.task, 0, 32);
      const rows = check(await r.client.infer(together, 60_000));
      const alone = (await Promise.all(split(together).map((x) => r.client.infer(x, 60_000)))).flatMap(check);
      batchInvariance[r.variant] = Math.max(...rows.map((x, k) => Math.abs(x - alone[k]!)));
    }
    return { sizes, loadMs, rssBefore, rss, one, thirtyTwo, saturation, outputs, batchInvariance };
  } finally {
    for (const r of replicas) r.stop();
  }
}

/** One item per row of `item`'s (only) input. */
function split(item: WireInferRequest): WireInferRequest[] {
  const t = item.tensors!.tensors[0]!;
  const [rows, ...inner] = t.shape.map(Number);
  const width = inner.reduce((a, b) => a * b, 1);
  const data = tensorValues(t) as number[];
  return Array.from({ length: rows! }, (_, r) =>
    request(
      `${item.id}.${r}`,
      item.parameters!.task,
      makeTensor(t.name, t.datatype as 'FP32', [1, ...inner], data.slice(r * width, (r + 1) * width)),
    ),
  );
}

type Figures = Awaited<ReturnType<typeof measure>>;

function table(w: Workload, f: Figures): string {
  const fp32 = f.outputs.fp32!;
  const lines = VARIANTS.map((v, k) => {
    const a = agreement(fp32, f.outputs[v]!, w.outWidth);
    const smaller = v === 'fp32' ? '' : ` (${fixed((1 - f.sizes[v]! / f.sizes.fp32!) * 100, 0)} % smaller)`;
    const agree =
      v === 'fp32'
        ? 'reference'
        : w.model === 'mlp'
          ? `top-1 ${fixed(a.top1 * 100, 2)} %, max abs diff ${a.maxAbsDiff.toPrecision(2)}${a.flipMargins.length ? `, flips at FP32 margins ≤ ${Math.max(...a.flipMargins).toPrecision(2)}` : ''}`
          : `cosine min ${a.minCosine.toFixed(5)}, max abs diff ${a.maxAbsDiff.toPrecision(2)}`;
    return `| ${v} | ${mb(f.sizes[v]!)}${smaller} | ${fixed(f.loadMs[v]!, 0)} | ${mb(f.rss[v]!)} (${mb(f.rssBefore[v]!)}) | ${ms(quantile(f.one[k]!, 0.5))} / ${ms(quantile(f.one[k]!, 0.99))} | ${ms(quantile(f.thirtyTwo[k]!, 0.5))} / ${ms(quantile(f.thirtyTwo[k]!, 0.99))} | ${fixed(f.saturation[v]!.rowsPerS, 0)} | ${fixed(f.saturation[v]!.cpuMsPerRow, 3)} | ${agree} | ${f.batchInvariance[v] === 0 ? 'yes' : `no (${f.batchInvariance[v]!.toPrecision(2)})`} |`;
  });
  return [
    '| variant | file MB | load ms | replica RSS MB once loaded (before) | batch 1 ms p50 / p99 | batch 32 ms p50 / p99 | rows/s at saturation | replica CPU ms / row | agreement with FP32 | batch-invariant |',
    '|--|--:|--:|--:|--:|--:|--:|--:|--|--|',
    ...lines,
    '',
    ...VARIANTS.slice(1).map((v) => verdict(w, f, v)),
  ].join('\n');
}

/**
 * One line per variant against FP32, from the figures above: each ratio (below 1 is smaller or
 * faster; a slower figure says so) and the issue's targets for INT8 — at least 60 % smaller,
 * top-1 agreement ≥ 99 % (mlp) or cosine ≥ 0.99 (embedder).
 */
function verdict(w: Workload, f: Figures, v: VariantName): string {
  const k = VARIANTS.indexOf(v);
  const ratio = (a: number, b: number, what: string) => `${what} ×${fixed(a / b, 2)}`;
  const p50 = (times: number[][], i: number) => quantile(times[i]!, 0.5);
  const slower = [
    p50(f.one, k) > p50(f.one, 0) && 'batch 1',
    p50(f.thirtyTwo, k) > p50(f.thirtyTwo, 0) && 'batch 32',
    f.saturation[v]!.rowsPerS < f.saturation.fp32!.rowsPerS && 'at saturation',
  ].filter(Boolean);
  const a = agreement(f.outputs.fp32!, f.outputs[v]!, w.outWidth);
  const smaller = 1 - f.sizes[v]! / f.sizes.fp32!;
  const agreeOk = w.model === 'mlp' ? a.top1 >= 0.99 : a.minCosine >= 0.99;
  const targets =
    v === 'int8'
      ? `; targets: ${smaller >= 0.6 ? 'met' : 'missed'} for size (${fixed(smaller * 100, 0)} % smaller), ${agreeOk ? 'met' : 'missed'} for agreement (${w.model === 'mlp' ? `top-1 ${fixed(a.top1 * 100, 2)} %` : `cosine ≥ ${a.minCosine.toFixed(5)}`})`
      : '';
  return `- ${v} against fp32: ${[
    ratio(f.sizes[v]!, f.sizes.fp32!, 'file'),
    ratio(f.rss[v]!, f.rss.fp32!, 'RSS'),
    ratio(f.loadMs[v]!, f.loadMs.fp32!, 'load'),
    ratio(p50(f.one, k), p50(f.one, 0), 'batch-1 p50'),
    ratio(p50(f.thirtyTwo, k), p50(f.thirtyTwo, 0), 'batch-32 p50'),
    ratio(f.saturation[v]!.rowsPerS, f.saturation.fp32!.rowsPerS, 'rows/s'),
  ].join(', ')}${slower.length ? ` — slower ${slower.join(', ')} in this run` : ''}${targets}.`;
}

async function main(): Promise<void> {
  ensureModels();
  const root = mkdtempSync(join(tmpdir(), 'skillserve-variants-'));
  const loadBefore = loadavg();
  const sections: string[] = [];
  try {
    for (const w of WORKLOADS) {
      const f = await measure(w, root);
      const t = table(w, f);
      console.log(`\n${w.model}\n${t}`);
      sections.push(`**${w.model}**\n\n${t}`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  const loadAfter = loadavg();
  const markdown = `
## Model variants: FP32, FP16 and INT8 side by side

Reproduce: \`npm run bench:variants\` (\`-- --seconds N\` per phase; this run: ${SECONDS} s). Run on
${new Date().toISOString().slice(0, 10)}, ${machine()}, revision ${revision()}. Load average
${loadBefore.map((x) => x.toFixed(1)).join(' / ')} before and ${loadAfter.map((x) => x.toFixed(1)).join(' / ')} after (1, 5, 15 min)${
    Math.max(loadBefore[0]!, loadAfter[0]!) > cpus().length
      ? `: the machine was busy with other work during this run (more runnable processes than its ${cpus().length} cores), so absolute latencies and rates are inflated; the ratios between variants, measured interleaved in the same run, are the figures to read`
      : ''
  }. Compare within a table, not across runs.

Each variant runs in its own skill replica (a child process hosting only that file; onnxruntime's
default threads), all of a model's replicas up at once. *File*: bytes on disk. *Load*: onnxruntime
session creation, median of 3. *RSS*: the replica's resident memory after its first calls (before
the first call, after the start-up check, in brackets). *Batch 1*: one \`Infer\` of one row; *batch
32*: one \`InferBatch\` of 32 one-row items, stacked into one run; both sequential, rounds
interleaved across the variants. *Saturation*: 4 \`InferBatch\` calls of 32 items in flight, one
variant at a time in one-second slices taken in turn, ${SECONDS} s each in all; CPU per row is the
replica's (user + system) over the rows it computed. *Agreement*: the same inputs through each variant against FP32 — for \`mlp\` 4,096 rows of
the generated inputs (\`row(256, seed)\`, values in [-1, 1)), top-1 agreement of the 16 logits, the
largest absolute difference of any logit and the FP32 top-2 margins of the rows whose top-1
changed; for \`embedder\` 2,048 sequences of 1–16 token ids, the cosine of each vector to FP32's.
*Batch-invariant*: 32 rows computed in one run give bit for bit what each row gives alone.

${sections.join('\n\n')}
`;
  writeSection('model-variants', markdown);
  console.log(`\nwritten to ${benchmarksPath}`);
}

await main();
