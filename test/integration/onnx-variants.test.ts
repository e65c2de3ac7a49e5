import assert from 'node:assert/strict';
import { cpSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { EMBEDDER_VOCAB, EMBEDDER_WIDTH, MLP_WIDTHS } from '../../scripts/models/definitions.js';
import { ConfigError } from '../../src/config/index.js';
import type { SkillBackend } from '../../src/skills/backend.js';
import { createOnnxBackend } from '../../src/skills/backends/onnx/index.js';
import { SkillClient } from '../../src/skills/client.js';
import type { WireInferRequest, WireInferResponse } from '../../src/skills/proto.js';
import { createSkillServer } from '../../src/skills/server.js';
import { makeTensor, tensorValues } from '../../src/skills/tensors.js';
import { eventually } from '../helpers/env.js';
import { agreement, row, scratchRepository, withVariants } from '../helpers/models.js';

const logger = pino({ level: 'silent' });
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/**
 * Tolerances against FP32, from the figures in docs/BENCHMARKS.md (4,096 rows of the same
 * inputs: FP16 max |Δ| 0.0012, INT8 0.017, embedder INT8 cosine ≥ 0.9999) with room for
 * another CPU's kernels. A changed top-1 is allowed only where FP32's own two best logits are
 * nearer than twice the tolerance: a near tie, not a different answer.
 */
const TOLERANCE = { fp16: 0.005, int8: 0.04 } as const;

const [IN, OUT] = [MLP_WIDTHS[0], MLP_WIDTHS[MLP_WIDTHS.length - 1]!];
const mlpRows = (n: number, from = 1000) => Array.from({ length: n }, (_, i) => row(IN, from + i));
const mlpItem = (id: string, task: string, rows: number[][]): WireInferRequest => ({
  id,
  tensors: { tensors: [makeTensor('input', 'FP32', [rows.length, IN], rows.flat())] },
  parameters: { task, maxTokens: 0, modelVersion: '' },
});
const embedItem = (id: string, task: string, ids: number[][], modelVersion = ''): WireInferRequest => ({
  id,
  tensors: { tensors: [makeTensor('ids', 'INT64', [ids.length, ids[0]!.length], ids.flat())] },
  parameters: { task, maxTokens: 0, modelVersion },
});
const values = (res: WireInferResponse) => {
  assert.equal(res.error?.code ?? '', '', JSON.stringify(res.error));
  return tensorValues(res.tensors!.tensors[0]!) as number[];
};

async function serve(dir: string, idleUnloadMs = 0) {
  const backend = createOnnxBackend({ repository: dir, only: [], idleUnloadMs, intraOpThreads: 1, logger });
  const registry = new Registry();
  const server = createSkillServer({ name: 'onnx', backend, logger, registry });
  const client = new SkillClient('onnx', `127.0.0.1:${await server.start('127.0.0.1', 0)}`);
  cleanups.push(async () => {
    client.close();
    await server.stop(1_000);
  });
  const variants = (model: string) =>
    Object.fromEntries(
      (backend.describe().models ?? [])
        .find((m) => m.name === model)!
        .variants!.map((v) => [v.name, v.versions.map((x) => `${x.version}:${x.state}`).join(',')]),
    );
  return { backend, server, client, variants, registry };
}

describe('model variants over real gRPC (onnx skill on onnxruntime)', () => {
  let client: SkillClient;
  let backend: SkillBackend;
  let registry: Registry;

  before(async () => {
    const repo = scratchRepository(['embedder', 'mlp']);
    cleanups.push(repo.cleanup);
    ({ client, backend, registry } = await serve(repo.dir));
  });

  it('every variant loads and answers, and the answer names the variant', async () => {
    const x = mlpRows(1);
    for (const [task, model] of [
      ['mlp', 'mlp:fp32@1'],
      ['mlp:fp32', 'mlp:fp32@1'],
      ['mlp:fp16', 'mlp:fp16@1'],
      ['mlp:int8', 'mlp:int8@1'],
    ] as const) {
      const res = await client.infer(mlpItem(task, task, x), 30_000);
      assert.equal(res.model, model);
      assert.equal(values(res).length, OUT);
    }
    for (const variant of ['', ':fp32', ':fp16', ':int8']) {
      const res = await client.infer(embedItem('e', `embedder${variant}`, [[1, 2, 3]]), 10_000);
      assert.equal(
        res.model,
        `embedder${variant || ':int8'}@1`,
        'the default variant answers a request that names none',
      );
      assert.equal(values(res).length, EMBEDDER_WIDTH);
    }
  });

  it('mlp: FP16 and INT8 agree with FP32 within the measured tolerances', async () => {
    const x = mlpRows(128);
    const outputs = async (task: string) => {
      const all: number[] = [];
      for (let i = 0; i < x.length; i += 32)
        all.push(...values(await client.infer(mlpItem(task, task, x.slice(i, i + 32)), 30_000)));
      return all;
    };
    const fp32 = await outputs('mlp:fp32');
    for (const variant of ['fp16', 'int8'] as const) {
      const a = agreement(fp32, await outputs(`mlp:${variant}`), OUT);
      assert.ok(a.maxAbsDiff <= TOLERANCE[variant], `${variant}: max |Δ| ${a.maxAbsDiff}`);
      assert.ok(a.maxAbsDiff > 0, `${variant}: really computed in another precision`);
      for (const m of a.flipMargins)
        assert.ok(m < 2 * TOLERANCE[variant], `${variant}: top-1 changed where FP32's margin is ${m}`);
      assert.ok(a.top1 >= 0.95, `${variant}: top-1 agreement ${a.top1}`);
    }
  });

  it("INT8: a row's answer does not depend on the rows batched with it", async () => {
    const x = mlpRows(8, 5000);
    const together = values(await client.infer(mlpItem('all', 'mlp:int8', x), 30_000));
    const alone = await Promise.all(x.map((r, i) => client.infer(mlpItem(`r${i}`, 'mlp:int8', [r]), 30_000)));
    assert.deepEqual(alone.flatMap(values), together, 'bit for bit');
    // Items stacked by InferBatch, too.
    const batch = await client.inferBatch(
      x.map((r, i) => mlpItem(`b${i}`, 'mlp:int8', [r])),
      30_000,
    );
    assert.deepEqual(
      batch.items.flatMap((i) => values(i)),
      together,
    );
  });

  it('embedder: FP16 and INT8 vectors point where the FP32 ones do (cosine ≥ 0.999)', async () => {
    const ids = Array.from({ length: 32 }, (_, i) =>
      Array.from({ length: 6 }, (_, j) => (i * 977 + j * 131) % EMBEDDER_VOCAB),
    );
    const fp32 = values(await client.infer(embedItem('e', 'embedder:fp32', ids), 10_000));
    for (const variant of ['fp16', 'int8']) {
      const a = agreement(
        fp32,
        values(await client.infer(embedItem('e', `embedder:${variant}`, ids), 10_000)),
        EMBEDDER_WIDTH,
      );
      assert.ok(a.minCosine >= 0.999, `${variant}: cosine ${a.minCosine}`);
      assert.ok(a.maxAbsDiff > 0 && a.maxAbsDiff < 0.02, `${variant}: max |Δ| ${a.maxAbsDiff}`);
    }
  });

  it("the replica's metrics tell the variants apart", async () => {
    const text = await registry.metrics();
    assert.match(text, /skillserve_skill_items_total\{[^}]*model="mlp:int8"[^}]*outcome="ok"[^}]*\} [1-9]/);
    assert.match(text, /skillserve_model_state\{[^}]*model="mlp:int8",version="1",state="READY"[^}]*\} 1/);
    assert.match(text, /skillserve_model_state\{[^}]*model="mlp",version="1",state="READY"[^}]*\} 1/);
    assert.doesNotMatch(text, /model="other"/);
  });

  it('describes each variant: precision, size and state; the requests and tasks name them', () => {
    const d = backend.describe();
    assert.equal(d.model, 'embedder:int8@1,mlp:fp32@1', 'the default variant names what serves');
    assert.deepEqual(d.tasks, [...withVariants('embedder'), ...withVariants('mlp')]);
    const mlp = d.models!.find((m) => m.name === 'mlp')!;
    assert.equal(mlp.defaultVariant, 'fp32');
    assert.equal(mlp.precision, 'FP32');
    const sizes = Object.fromEntries(mlp.variants!.map((v) => [v.name, v.versions[0]!.sizeBytes!]));
    assert.deepEqual(
      mlp.variants!.map((v) => `${v.name}:${v.precision}:${v.versions[0]!.state}`),
      ['fp32:FP32:READY', 'fp16:FP16:READY', 'int8:INT8:READY'],
    );
    assert.equal(mlp.sizeBytes, sizes.fp32);
    assert.ok(sizes.int8! < 0.4 * sizes.fp32!, `INT8 is ${sizes.int8} bytes, FP32 ${sizes.fp32}`);
    assert.ok(Math.abs(sizes.fp16! / sizes.fp32! - 0.5) < 0.01, `FP16 is ${sizes.fp16} bytes`);
  });
});

describe('a broken variant fails alone, with an error naming its file', () => {
  it('corrupt, missing or of another precision: refused, reported, and the others serve', async () => {
    const repo = scratchRepository(['embedder']);
    cleanups.push(repo.cleanup);
    const dir = join(repo.dir, 'embedder', '1');
    const good = readFileSync(join(dir, 'model.int8.onnx'));
    writeFileSync(join(dir, 'model.int8.onnx'), good.subarray(0, 4096));
    cpSync(join(dir, 'model.onnx'), join(dir, 'model.fp16.onnx'));
    const configFile = join(repo.dir, 'embedder', 'config.json');
    const config = JSON.parse(readFileSync(configFile, 'utf8'));
    config.variants.int4 = { precision: 'INT8', file: 'model.int4.onnx' };
    writeFileSync(configFile, JSON.stringify({ ...config, default_variant: 'fp32' }));

    const { client, variants, backend } = await serve(repo.dir);
    assert.equal(await client.check(2_000), 'SERVING');
    for (const task of ['embedder', 'embedder:fp32']) {
      assert.equal((await client.infer(embedItem('ok', task, [[1, 2]]), 10_000)).model, 'embedder:fp32@1');
    }
    const refused: [string, RegExp][] = [
      ['embedder:int8', /^embedder:int8@1 cannot serve: embedder\/1\/model\.int8\.onnx: onnxruntime cannot load it/],
      [
        'embedder:fp16',
        /^embedder:fp16@1 cannot serve: embedder\/1\/model\.fp16\.onnx: config\.json declares variant "fp16" as FP16, but the file stores its weights in FP32 \(524,288 of 524,288 values\)/,
      ],
      ['embedder:int4', /^embedder:int4@1 cannot serve: embedder\/1\/model\.int4\.onnx is missing/],
    ];
    for (const [task, message] of refused) {
      const res = await client.infer(embedItem('x', task, [[1, 2]]), 10_000);
      assert.equal(res.error?.code, 'SKILL_UNAVAILABLE', task);
      assert.match(res.error!.message, message);
      assert.ok(!res.error!.message.includes(repo.dir), 'paths relative to the repository');
    }
    assert.deepEqual(variants('embedder'), { fp32: '1:READY', fp16: '1:FAILED', int8: '1:FAILED', int4: '1:FAILED' });
    const int8 = backend.describe().models![0]!.variants!.find((v) => v.name === 'int8')!;
    assert.match(int8.versions[0]!.error!, /embedder\/1\/model\.int8\.onnx: onnxruntime cannot load it/);
    assert.equal(backend.state(), 'READY', 'a broken variant does not make the skill unhealthy');

    // Replaced by a good file, the variant is checked again on the next rescan and serves.
    writeFileSync(join(dir, 'model.int8.tmp'), good);
    renameSync(join(dir, 'model.int8.tmp'), join(dir, 'model.int8.onnx'));
    await backend.refresh!();
    assert.equal((await client.infer(embedItem('fixed', 'embedder:int8', [[1, 2]]), 10_000)).model, 'embedder:int8@1');
    assert.equal(variants('embedder').int8, '1:READY');
  });

  it('a broken default variant stops the start-up, naming its file', async () => {
    const repo = scratchRepository(['embedder']);
    cleanups.push(repo.cleanup);
    const configFile = join(repo.dir, 'embedder', 'config.json');
    const config = JSON.parse(readFileSync(configFile, 'utf8'));
    writeFileSync(configFile, JSON.stringify({ ...config, default_variant: 'int8' }));
    const file = join(repo.dir, 'embedder', '1', 'model.int8.onnx');
    cpSync(join(repo.dir, 'embedder', '1', 'model.fp16.onnx'), file);
    const backend = createOnnxBackend({ repository: repo.dir, only: [], idleUnloadMs: 0, intraOpThreads: 1, logger });
    await assert.rejects(backend.prepare!(), (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(
        err.message,
        new RegExp(`${file}: config.json declares variant "int8" as INT8, but the file stores its weights in FP16`),
      );
      return true;
    });
    rmSync(file);
    await assert.rejects(backend.prepare!(), new RegExp(`${file} is missing`));
  });
});

describe('variants follow the model lifecycle', () => {
  it('each variant loads on its first call and unloads when idle, on its own', async () => {
    const repo = scratchRepository(['embedder']);
    cleanups.push(repo.cleanup);
    const { client, variants } = await serve(repo.dir, 300);
    assert.deepEqual(variants('embedder'), { fp32: '1:UNLOADED', fp16: '1:UNLOADED', int8: '1:UNLOADED' });
    await client.infer(embedItem('a', 'embedder:int8', [[1]]), 10_000);
    assert.deepEqual(variants('embedder'), { fp32: '1:UNLOADED', fp16: '1:UNLOADED', int8: '1:READY' });
    await eventually(async () => assert.equal(variants('embedder').int8, '1:UNLOADED'));
  });

  it('a new version brings its variants; each variant takes a pinned version', async () => {
    const repo = scratchRepository(['embedder']);
    cleanups.push(repo.cleanup);
    const configFile = join(repo.dir, 'embedder', 'config.json');
    const config = JSON.parse(readFileSync(configFile, 'utf8'));
    writeFileSync(configFile, JSON.stringify({ ...config, version_policy: { latest: 2 } }));
    const { backend, client, variants } = await serve(repo.dir);
    cpSync(join(repo.dir, 'embedder', '1'), join(repo.dir, 'embedder', '.staging'), { recursive: true });
    renameSync(join(repo.dir, 'embedder', '.staging'), join(repo.dir, 'embedder', '2'));
    await backend.refresh!();
    assert.equal((await client.infer(embedItem('new', 'embedder:int8', [[7]]), 10_000)).model, 'embedder:int8@2');
    assert.equal((await client.infer(embedItem('old', 'embedder:int8', [[7]], '1'), 10_000)).model, 'embedder:int8@1');
    assert.equal((await client.infer(embedItem('dflt', 'embedder', [[7]]), 10_000)).model, 'embedder:int8@2');
    assert.deepEqual(variants('embedder'), {
      fp32: '2:UNLOADED,1:UNLOADED',
      fp16: '2:UNLOADED,1:UNLOADED',
      int8: '2:READY,1:READY',
    });
  });
});
