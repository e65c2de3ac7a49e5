import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { ConfigError } from '../../src/config/index.js';
import { createOnnxBackend } from '../../src/skills/backends/onnx/index.js';
import { SkillClient } from '../../src/skills/client.js';
import type { WireInferRequest } from '../../src/skills/proto.js';
import { createSkillServer, type LifecycleSettings, type SkillServer } from '../../src/skills/server.js';
import { makeTensor } from '../../src/skills/tensors.js';
import { cliPath } from '../helpers/cluster.js';
import { eventually } from '../helpers/env.js';
import { adderModel, row, scratchRepository, writeModel } from '../helpers/models.js';

const logger = pino({ level: 'silent' });
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const classify = (id = 'c', version = ''): WireInferRequest => ({
  id,
  tensors: { tensors: [makeTensor('input', 'FP32', [1, 4], [1, 2, 3, 4])] },
  parameters: { task: 'classifier', maxTokens: 0, modelVersion: version },
});
const mlpItem = (id: string, rows = 1, version = ''): WireInferRequest => ({
  id,
  tensors: {
    tensors: [makeTensor('input', 'FP32', [rows, 256], Array.from({ length: rows }, () => row(256, 3)).flat())],
  },
  parameters: { task: 'mlp', maxTokens: 0, modelVersion: version },
});

function serverFor(repository: string, lifecycle: Partial<LifecycleSettings> = {}, only: string[] = []) {
  return createSkillServer({
    name: 'onnx',
    backend: createOnnxBackend({
      repository,
      only,
      idleUnloadMs: lifecycle.idleUnloadMs ?? 0,
      intraOpThreads: 1,
      logger,
    }),
    logger,
    registry: new Registry(),
    lifecycle: { healthIntervalMs: 100, ...lifecycle },
  });
}

async function start(models: string[], lifecycle: Partial<LifecycleSettings> = {}) {
  // Versions, not variants, are under test here (onnx-variants.test.ts has those).
  const repo = scratchRepository(models, { variants: false });
  const server = serverFor(repo.dir, lifecycle);
  const port = await server.start('127.0.0.1', 0);
  const client = new SkillClient('onnx', `127.0.0.1:${port}`);
  cleanups.push(async () => {
    client.close();
    await server.stop(1_000);
    repo.cleanup();
  });
  const states = async () => (await client.metrics(2_000)).models.map((m) => `${m.name}@${m.version}:${m.state}`);
  return { dir: repo.dir, server, client, port, states };
}

/** Copies a version directory and renames it into place, as a deploy should, so a rescan never sees half a file. */
function deploy(dir: string, model: string, from: string, to: string, content?: Buffer) {
  const staging = join(dir, model, `.staging-${to}`);
  cpSync(join(dir, model, from), staging, { recursive: true });
  if (content) writeFileSync(join(staging, 'model.onnx'), content);
  renameSync(staging, join(dir, model, to));
}

/** grpc.health.v1 Watch: every status the server pushes, in order. */
function watch(port: number, service = '') {
  const Ctor = grpc.makeGenericClientConstructor(healthService as grpc.ServiceDefinition, 'Health');
  const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Watch: (req: { service: string }) => grpc.ClientReadableStream<{ status: string }>;
  };
  const seen: string[] = [];
  const stream = client.Watch({ service });
  stream.on('data', (m: { status: string }) => seen.push(m.status));
  stream.on('error', () => undefined);
  cleanups.push(() => {
    stream.cancel();
    client.close();
  });
  return seen;
}

describe('model lifecycle in the skill runtime (onnx, real onnxruntime)', () => {
  it('loads lazily: SERVING while loadable, READY after the first call', async () => {
    const { client, states } = await start(['classifier']);
    assert.equal(await client.check(2_000), 'SERVING');
    assert.equal((await client.metrics(2_000)).modelState, 'UNLOADED');
    assert.deepEqual(await states(), ['classifier@1:UNLOADED']);
    const res = await client.infer(classify(), 10_000);
    assert.equal(res.model, 'classifier@1');
    assert.equal((await client.metrics(2_000)).modelState, 'READY');
    assert.deepEqual(await states(), ['classifier@1:READY']);
  });

  it('unloads after the idle time and loads again on the next call', async () => {
    const { client, states } = await start(['classifier'], { idleUnloadMs: 300 });
    await client.infer(classify(), 10_000);
    assert.deepEqual(await states(), ['classifier@1:READY']);
    await eventually(async () => {
      assert.equal((await client.metrics(2_000)).modelState, 'UNLOADED');
      assert.deepEqual(await states(), ['classifier@1:UNLOADED']);
    });
    assert.equal(await client.check(2_000), 'SERVING', 'unloaded but loadable');
    const again = await client.infer(classify(), 10_000);
    assert.equal(again.error?.code ?? '', '');
    assert.deepEqual(await states(), ['classifier@1:READY']);
  });

  it('a new version takes over; the old one finishes its calls in flight, then unloads', async () => {
    const { dir, server, client, states } = await start(['mlp']);
    await client.infer(mlpItem('warm'), 10_000);
    // A call long enough to be in flight while the new version arrives: 32 runs of 32 rows.
    const long = client.inferBatch(
      Array.from({ length: 32 }, (_, i) => mlpItem(`b${i}`, 32)),
      120_000,
    );
    await eventually(async () => assert.ok((await client.metrics(2_000)).inFlight >= 1), { intervalMs: 5 });
    deploy(dir, 'mlp', '1', '2');
    await server.refresh();
    const during = await client.metrics(2_000);
    const fresh = await client.infer(mlpItem('new'), 10_000);
    assert.equal(fresh.model, 'mlp@2');
    const res = await long;
    assert.ok(
      res.items.every((i) => !i.error?.code && i.model === 'mlp@1'),
      'the call in flight finished on version 1',
    );
    if (during.inFlight >= 1) assert.ok(during.models.some((m) => m.version === '1' && m.state === 'DRAINING'));
    await eventually(async () => assert.deepEqual(await states(), ['mlp@2:READY']));
    const pinned = await client.infer(mlpItem('old', 1, '1'), 10_000);
    assert.equal(pinned.error?.code, 'BAD_REQUEST');
    assert.match(pinned.error!.message, /no version "1" serving; versions: 2/);

    // A broken version is left out and the serving one stays, healthy.
    deploy(dir, 'mlp', '2', '3', Buffer.from('not an onnx model'));
    await server.refresh();
    assert.deepEqual(await states(), ['mlp@2:READY']);
    assert.equal((await client.infer(mlpItem('after'), 10_000)).model, 'mlp@2');
    assert.equal(await client.check(2_000), 'SERVING');
  });

  it('polls the repository: a new model and a changed config apply without a restart', async () => {
    const { dir, client } = await start(['classifier'], { refreshIntervalMs: 100 });
    writeModel(dir, adderModel());
    await eventually(async () => assert.deepEqual((await client.metrics(2_000)).tasks, ['adder', 'classifier']));
    const sum = await client.infer(
      {
        id: 's',
        tensors: { tensors: [makeTensor('a', 'FP32', [1, 2], [1, 2]), makeTensor('b', 'FP32', [1, 2], [3, 4])] },
        parameters: { task: 'adder', maxTokens: 0, modelVersion: '' },
      },
      10_000,
    );
    assert.deepEqual(sum.tensors?.tensors[0]?.fp32Data, [4, 6]);

    const configFile = join(dir, 'classifier', 'config.json');
    const config = JSON.parse(readFileSync(configFile, 'utf8'));
    writeFileSync(configFile, JSON.stringify({ ...config, max_batch_size: 2, dynamic_batching: undefined }));
    const big = () => ({
      ...classify(),
      tensors: { tensors: [makeTensor('input', 'FP32', [3, 4], Array(12).fill(1))] },
    });
    await eventually(async () => {
      const res = await client.infer(big(), 10_000);
      assert.match(res.error?.message ?? '', /batch of 3 is over max_batch_size 2/);
    });

    rmSync(join(dir, 'adder'), { recursive: true });
    await eventually(async () => assert.deepEqual((await client.metrics(2_000)).tasks, ['classifier']));
  });
});

describe('skill health (grpc.health.v1)', () => {
  it('Watch streams NOT_SERVING when the model cannot load, and SERVING once it can', async () => {
    const { dir, port, client } = await start(['classifier']);
    const file = join(dir, 'classifier', '1', 'model.onnx');
    const good = readFileSync(file);
    const seen = watch(port);
    await eventually(async () => assert.deepEqual(seen, ['SERVING']));
    writeFileSync(file, 'garbage');
    const failed = await client.infer(classify(), 10_000);
    assert.equal(failed.error?.code, 'SKILL_UNAVAILABLE');
    assert.match(failed.error!.message, /classifier@1 could not be loaded/);
    await eventually(async () => assert.deepEqual(seen, ['SERVING', 'NOT_SERVING']));
    assert.equal(await client.check(2_000, 'skillserve.v1.SkillService'), 'NOT_SERVING');

    writeFileSync(file, good);
    assert.equal((await client.infer(classify(), 10_000)).model, 'classifier@1');
    await eventually(async () => assert.deepEqual(seen, ['SERVING', 'NOT_SERVING', 'SERVING']));
  });

  it('a version that failed to load recovers on the next rescan, without traffic', async () => {
    const { dir, client } = await start(['classifier'], { refreshIntervalMs: 100 });
    const file = join(dir, 'classifier', '1', 'model.onnx');
    const good = readFileSync(file);
    writeFileSync(file, 'garbage');
    assert.equal((await client.infer(classify(), 10_000)).error?.code, 'SKILL_UNAVAILABLE');
    await eventually(async () => assert.equal(await client.check(2_000), 'NOT_SERVING'));
    writeFileSync(file, good);
    await eventually(async () => assert.equal(await client.check(2_000), 'SERVING'));
  });

  it('answers NOT_SERVING while free memory is under the floor', async () => {
    const high = await start(['classifier'], { minFreeMemoryMb: 1e9 });
    assert.equal(await high.client.check(2_000), 'NOT_SERVING');
    const low = await start(['classifier'], { minFreeMemoryMb: 1 });
    assert.equal(await low.client.check(2_000), 'SERVING');
    // The answer carries the status only: no reason, path or model detail.
    const metrics = await high.client.metrics(2_000);
    assert.ok(!JSON.stringify(metrics).includes('/'));
  });

  it('Watch sees NOT_SERVING as soon as the server stops', async () => {
    const repo = scratchRepository(['classifier']);
    cleanups.push(repo.cleanup);
    const server: SkillServer = serverFor(repo.dir);
    const port = await server.start('127.0.0.1', 0);
    const seen = watch(port);
    await eventually(async () => assert.deepEqual(seen, ['SERVING']));
    const stopping = server.stop(2_000);
    await eventually(async () => assert.deepEqual(seen, ['SERVING', 'NOT_SERVING']));
    await stopping;
  });
});

describe('a misconfigured repository fails at start-up, saying what is wrong', () => {
  const failure = async (prepare: (dir: string) => void, only: string[] = []) => {
    const repo = scratchRepository(['classifier', 'mlp'], { variants: false });
    cleanups.push(repo.cleanup);
    prepare(repo.dir);
    const server = serverFor(repo.dir, {}, only);
    try {
      await server.start('127.0.0.1', 0);
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.message;
    } finally {
      await server.stop(200);
    }
    assert.fail('start-up should have failed');
  };
  const editConfig = (dir: string, edit: (c: any) => void) => {
    const file = join(dir, 'classifier', 'config.json');
    const c = JSON.parse(readFileSync(file, 'utf8'));
    edit(c);
    writeFileSync(file, JSON.stringify(c));
  };

  it('a missing repository', async () => {
    assert.match(await failure((dir) => rmSync(dir, { recursive: true })), /MODEL_REPOSITORY: .* is not a directory/);
  });
  it('a version directory without its model file', async () => {
    assert.match(await failure((dir) => mkdirSync(join(dir, 'mlp', '2'))), /mlp\/2\/model.onnx is missing/);
  });
  it('a model file onnxruntime cannot read', async () => {
    assert.match(
      await failure((dir) => writeFileSync(join(dir, 'mlp', '1', 'model.onnx'), 'nope')),
      /mlp\/1\/model.onnx: onnxruntime cannot load it/,
    );
  });
  it('an invalid config.json', async () => {
    assert.match(
      await failure((dir) => editConfig(dir, (c) => (c.inputs[0].datatype = 'FLOAT32'))),
      /classifier\/config.json: inputs.0.datatype: /,
    );
    assert.match(
      await failure((dir) => rmSync(join(dir, 'classifier', 'config.json'))),
      /classifier\/config.json is missing/,
    );
  });
  it('a config that contradicts the model', async () => {
    assert.match(
      await failure((dir) => editConfig(dir, (c) => (c.inputs[0].datatype = 'INT64'))),
      /input "input": the model has float32, config.json says INT64/,
    );
    assert.match(
      await failure((dir) => editConfig(dir, (c) => (c.outputs[0].name = 'scores'))),
      /config output "scores" is not a output of the model/,
    );
  });
  it('ONNX_MODELS naming a model that is not there', async () => {
    assert.match(await failure(() => undefined, ['classifier', 'nope']), /ONNX_MODELS: names "nope"/);
  });

  it('the skill process exits with status 2 and the message', async () => {
    const repo = scratchRepository(['classifier']);
    cleanups.push(repo.cleanup);
    editConfig(repo.dir, (c) => (c.max_batch_size = -1));
    const child = spawn(process.execPath, ['--import', 'tsx', cliPath, 'skill'], {
      env: { ...process.env, SKILL_NAME: 'onnx', MODEL_REPOSITORY: repo.dir, LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 2, out);
    assert.match(out, /invalid configuration:\n {2}.*classifier\/config.json: max_batch_size: /);
  });
});
