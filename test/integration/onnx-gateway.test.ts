import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { statSync } from 'node:fs';
import { EMBEDDER_WIDTH, MLP_WIDTHS, VARIANT_FILES } from '../../scripts/models/definitions.js';
import { type HttpResult, startTestCluster, withDevKey } from '../helpers/cluster.js';
import { eventually, testConfig } from '../helpers/env.js';
import {
  agreement,
  argmax,
  assertClose,
  dense,
  MODELS_DIR,
  readWeights,
  row,
  softmax,
  withVariants,
} from '../helpers/models.js';

const x = [
  [0.5, -1, 2, 0.25],
  [-3, 0, 1, 1],
];

describe('tensor inference through nginx and the gateways (Open Inference Protocol JSON)', () => {
  let cluster: Awaited<ReturnType<typeof startTestCluster>>;
  const http = withDevKey(() => cluster);
  let cleanup: () => Promise<void>;
  let base: string;
  const infer = (body: unknown, skill = 'onnx') => http(`${base}/v1/skills/${skill}/infer`, { json: body });
  const classifierInput = (data: unknown = x, extra: object = {}) => ({
    name: 'input',
    datatype: 'FP32',
    shape: [2, 4],
    data,
    ...extra,
  });

  before(async () => {
    const t = await testConfig({ SKILLS: 'nlp,onnx' });
    cleanup = t.cleanup;
    cluster = await startTestCluster(t.config, t.env);
    base = cluster.endpoint;
    // Readiness needs one SERVING skill; wait until every gateway has seen the onnx skill's
    // announcement too (each reads the registry on its own, REGISTRY_CACHE_MS apart).
    const gateways = Array.from(
      { length: t.config.GATEWAY_COUNT },
      (_, i) => `http://127.0.0.1:${t.config.GATEWAY_BASE_PORT + i}`,
    );
    await eventually(async () => {
      for (const g of gateways) assert.equal((await http(`${g}/v1/skills/onnx`)).body?.status, 'available', g);
    });
  });

  after(async () => {
    await cluster?.stop();
    await cleanup?.();
  });

  it('GET /v1/skills/onnx shows each model: inputs, outputs, versions and state', async () => {
    const res = await http(`${base}/v1/skills/onnx`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.backend, 'onnx');
    assert.deepEqual(res.body.tasks, ['classifier', ...withVariants('embedder'), ...withVariants('mlp')]);
    assert.equal(res.body.default_task, 'classifier');
    const classifier = res.body.models.find((m: { name: string }) => m.name === 'classifier');
    assert.deepEqual(classifier.inputs, [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }]);
    assert.deepEqual(
      classifier.outputs.map((o: { name: string; datatype: string }) => `${o.name}:${o.datatype}`),
      ['probabilities:FP32', 'label:INT64'],
    );
    assert.equal(classifier.max_batch_size, 64);
    assert.deepEqual(classifier.dynamic_batching, { max_queue_delay_ms: 1, preferred_batch_sizes: [16, 64] });
    assert.equal(classifier.versions.length, 1);
    assert.equal(classifier.versions[0].version, '1');
    assert.match(classifier.versions[0].state, /^(UNLOADED|LOADING|READY)$/);
    assert.ok(!res.text.includes(MODELS_DIR), 'no paths');
  });

  it('POST infer with inputs answers outputs computed by the model', async () => {
    const res = await infer({ model: 'classifier', inputs: [classifierInput()] });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.model, 'classifier@1');
    assert.equal(res.body.model_name, 'classifier');
    assert.equal(res.body.model_version, '1');
    assert.equal(res.body.task, 'classifier');
    const w = readWeights(join(MODELS_DIR, 'classifier', '1', 'model.onnx'));
    const logits = x.map((r) => dense(r, w.get('W')!, w.get('B')!));
    const [probabilities, label] = res.body.outputs;
    assert.deepEqual(
      [probabilities.name, probabilities.datatype, probabilities.shape],
      ['probabilities', 'FP32', [2, 3]],
    );
    assertClose(probabilities.data, logits.flatMap(softmax), 'probabilities');
    assert.deepEqual(label, { name: 'label', datatype: 'INT64', shape: [2], data: logits.map(argmax) });
    for (const k of ['queueMs', 'computeMs', 'skillMs', 'totalMs']) assert.equal(typeof res.body.timings[k], 'number');

    // The skill's default model, `task` as a synonym of `model`, a pinned version: same answer.
    for (const body of [
      { inputs: [classifierInput(x.flat())] },
      { task: 'classifier', inputs: [classifierInput()] },
      { model: 'classifier', model_version: '1', inputs: [classifierInput()] },
    ]) {
      const again = await infer(body);
      assert.equal(again.status, 200, again.text);
      assert.deepEqual(again.body.outputs, res.body.outputs);
    }
  });

  it('INT64 inputs: the embedder', async () => {
    const res = await infer({
      model: 'embedder:fp32',
      inputs: [{ name: 'ids', datatype: 'INT64', shape: [1, 2], data: [4, 5] }],
    });
    assert.equal(res.status, 200, res.text);
    const e = readWeights(join(MODELS_DIR, 'embedder', '1', 'model.onnx')).get('E')!;
    assertClose(
      res.body.outputs[0].data,
      Array.from(
        { length: EMBEDDER_WIDTH },
        (_, j) => (e.data[4 * EMBEDDER_WIDTH + j]! + e.data[5 * EMBEDDER_WIDTH + j]!) / 2,
      ),
      'embedding',
    );
  });

  it('GET /v1/skills/onnx/models lists each variant with its precision and size', async () => {
    const res = await http(`${base}/v1/skills/onnx/models`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.skill, 'onnx');
    const byName = Object.fromEntries(res.body.models.map((m: { name: string }) => [m.name, m]));
    assert.deepEqual(Object.keys(byName), ['classifier', 'embedder', 'mlp']);
    assert.equal(byName.classifier.precision, 'FP32');
    assert.equal(byName.classifier.size_bytes, statSync(join(MODELS_DIR, 'classifier', '1', 'model.onnx')).size);
    assert.equal(byName.classifier.variants, undefined, 'no variants declared');
    // What a request that names no variant gets: INT8 for the embedder, FP32 for the mlp (the
    // figures in docs/BENCHMARKS.md decided), and the model-level precision says so.
    assert.deepEqual([byName.embedder.default_variant, byName.embedder.precision], ['int8', 'INT8']);
    const mlp = byName.mlp;
    assert.deepEqual([mlp.default_variant, mlp.precision], ['fp32', 'FP32']);
    assert.deepEqual(
      mlp.variants.map((v: { name: string; model: string; precision: string; default: boolean }) => [
        v.name,
        v.model,
        v.precision,
        v.default,
      ]),
      [
        ['fp32', 'mlp:fp32', 'FP32', true],
        ['fp16', 'mlp:fp16', 'FP16', false],
        ['int8', 'mlp:int8', 'INT8', false],
      ],
    );
    for (const v of mlp.variants) {
      const file = join(MODELS_DIR, 'mlp', '1', VARIANT_FILES[v.name as keyof typeof VARIANT_FILES]);
      assert.equal(v.versions[0].version, '1');
      assert.equal(v.versions[0].size_bytes, statSync(file).size, v.name);
      assert.match(v.versions[0].state, /^(UNLOADED|LOADING|READY)$/);
    }
    // The same models as GET /v1/skills/onnx; a skill without a repository has no list.
    assert.deepEqual(
      (await http(`${base}/v1/skills/onnx`)).body.models.map((m: { name: string }) => m.name),
      Object.keys(byName),
    );
    const nlp = await http(`${base}/v1/skills/nlp/models`);
    assert.equal(nlp.status, 404, nlp.text);
    assert.equal(nlp.body.error.code, 'NOT_FOUND');
    assert.equal((await http(`${base}/v1/skills/nope/models`)).body.error.code, 'SKILL_NOT_FOUND');
  });

  it('a request names a variant (mlp:int8); it answers close to FP32, and says which answered', async () => {
    const rows = Array.from({ length: 4 }, (_, i) => row(MLP_WIDTHS[0], 9000 + i));
    const ask = (model: string) =>
      infer({ model, inputs: [{ name: 'input', datatype: 'FP32', shape: [4, MLP_WIDTHS[0]], data: rows }] });
    const fp32 = await ask('mlp');
    assert.equal(fp32.status, 200, fp32.text);
    assert.equal(fp32.body.model, 'mlp:fp32@1', 'the default variant');
    for (const [variant, tolerance] of [
      ['fp16', 0.005],
      ['int8', 0.08],
    ] as const) {
      const res = await ask(`mlp:${variant}`);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(
        [res.body.model, res.body.model_name, res.body.model_version],
        [`mlp:${variant}@1`, `mlp:${variant}`, '1'],
      );
      const a = agreement(fp32.body.outputs[0].data, res.body.outputs[0].data, MLP_WIDTHS[MLP_WIDTHS.length - 1]!);
      assert.ok(a.maxAbsDiff > 0 && a.maxAbsDiff <= tolerance, `${variant}: max |Δ| ${a.maxAbsDiff}`);
    }
    // The embedder's variants, its default (INT8) among them, against its FP32 vectors.
    const ids = { name: 'ids', datatype: 'INT64', shape: [2, 3], data: [1, 2, 3, 8000, 8001, 8191] };
    const vectors = async (model: string) => {
      const res = await infer({ model, inputs: [ids] });
      assert.equal(res.status, 200, res.text);
      return res.body;
    };
    const reference = (await vectors('embedder:fp32')).outputs[0].data;
    for (const [model, answered] of [
      ['embedder', 'embedder:int8@1'],
      ['embedder:fp16', 'embedder:fp16@1'],
    ] as const) {
      const body = await vectors(model);
      assert.equal(body.model, answered);
      const a = agreement(reference, body.outputs[0].data, EMBEDDER_WIDTH);
      assert.ok(a.minCosine >= 0.999 && a.maxAbsDiff > 0, `${model}: cosine ${a.minCosine}`);
    }

    const unknown = await ask('mlp:int4');
    assert.equal(unknown.status, 400, unknown.text);
    assert.match(unknown.body.error.message, /model: onnx has no model "mlp:int4"/);
    assert.ok(unknown.body.error.details.models.includes('mlp:int8'));
  });

  it('keeps the text path: nlp still answers text', async () => {
    const res = await infer({ input: 'What a lovely day!' }, 'nlp');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.output.label, 'positive');
  });

  describe('a bad tensor request is a 400 naming what is wrong', () => {
    const cases: [string, () => Promise<HttpResult>, string, RegExp][] = [
      [
        'wrong datatype',
        () => infer({ model: 'classifier', inputs: [classifierInput(x, { datatype: 'FP64' })] }),
        'BAD_REQUEST',
        /input "input": datatype FP64, expected FP32/,
      ],
      [
        'wrong shape',
        () => infer({ model: 'classifier', inputs: [{ ...classifierInput([1, 2, 3, 4, 5]), shape: [1, 5] }] }),
        'BAD_REQUEST',
        /input "input": shape \[1,5\] does not fit \[-1,4\]/,
      ],
      [
        'data that does not fill the shape',
        () => infer({ model: 'classifier', inputs: [classifierInput([1, 2, 3])] }),
        'BAD_REQUEST',
        /input "input": shape \[2,4\] needs 8 values, got 3/,
      ],
      [
        'a value of the wrong type',
        () => infer({ model: 'classifier', inputs: [classifierInput([1, 2, 3, 4, 5, 6, 7, 'eight'])] }),
        'BAD_REQUEST',
        /input "input": data\[7\] is "eight", expected a number for FP32/,
      ],
      [
        'an unknown datatype',
        () => infer({ model: 'classifier', inputs: [classifierInput(x, { datatype: 'FLOAT' })] }),
        'BAD_REQUEST',
        /inputs.0.datatype \(input "input"\)/,
      ],
      [
        'an unknown input',
        () => infer({ model: 'classifier', inputs: [classifierInput(x, { name: 'features' })] }),
        'BAD_REQUEST',
        /unknown input "features" for model "classifier"/,
      ],
      [
        'no input at all',
        () => infer({ model: 'classifier', inputs: [] }),
        'BAD_REQUEST',
        /inputs: give at least one tensor/,
      ],
      [
        'an unknown model',
        () => infer({ model: 'resnet', inputs: [classifierInput()] }),
        'BAD_REQUEST',
        /model: onnx has no model "resnet"/,
      ],
      [
        'an unknown task',
        () => infer({ task: 'resnet', inputs: [classifierInput()] }),
        'UNKNOWN_TASK',
        /onnx has no task "resnet"/,
      ],
      [
        'a version that does not serve',
        () => infer({ model: 'classifier', model_version: '9', inputs: [classifierInput()] }),
        'BAD_REQUEST',
        /no version "9" serving/,
      ],
      [
        'an id out of the vocabulary',
        () => infer({ model: 'embedder', inputs: [{ name: 'ids', datatype: 'INT64', shape: [1, 1], data: [10_000] }] }),
        'BAD_REQUEST',
        /embedder:int8@1 could not compute this input/,
      ],
      [
        'text for a tensor model',
        () => infer({ model: 'classifier', input: 'hello' }),
        'BAD_REQUEST',
        /takes tensor inputs/,
      ],
      [
        'tensors for a text skill',
        () => infer({ inputs: [classifierInput()] }, 'nlp'),
        'BAD_REQUEST',
        /nlp needs a non-empty text input/,
      ],
      [
        'a model for a one-model skill',
        () => infer({ model: 'x', input: 'hi' }, 'nlp'),
        'BAD_REQUEST',
        /model: nlp hosts one model/,
      ],
      [
        'both text and tensors',
        () => infer({ input: 'hi', inputs: [classifierInput()] }),
        'BAD_REQUEST',
        /give either "input" \(text\) or "inputs"/,
      ],
    ];
    for (const [name, send, code, message] of cases) {
      it(name, async () => {
        const res = await send();
        assert.equal(res.status, 400, res.text);
        assert.equal(res.body.error.code, code, res.text);
        assert.match(res.body.error.message, message);
        assert.ok(!/at .+\.(ts|js):\d+/.test(res.text), 'no stack trace');
      });
    }
  });

  it('reports the onnx models loaded once used', async () => {
    await eventually(async () => {
      const res = await http(`${base}/v1/skills/onnx`);
      const classifier = res.body.models.find((m: { name: string }) => m.name === 'classifier');
      assert.equal(classifier.versions[0].state, 'READY');
    });
  });
});
