import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EMBEDDER_WIDTH } from '../../scripts/models/definitions.js';
import { type HttpResult, startTestCluster, withDevKey } from '../helpers/cluster.js';
import { eventually, testConfig } from '../helpers/env.js';
import { argmax, assertClose, dense, MODELS_DIR, readWeights, softmax } from '../helpers/models.js';

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
    // Readiness needs one SERVING skill; wait until the onnx skill is announced too.
    await eventually(async () => assert.equal((await http(`${base}/v1/skills/onnx`)).body?.status, 'available'));
  });

  after(async () => {
    await cluster?.stop();
    await cleanup?.();
  });

  it('GET /v1/skills/onnx shows each model: inputs, outputs, versions and state', async () => {
    const res = await http(`${base}/v1/skills/onnx`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.backend, 'onnx');
    assert.deepEqual(res.body.tasks, [
      'classifier',
      'embedder',
      'embedder:fp32',
      'embedder:fp16',
      'embedder:int8',
      'mlp',
      'mlp:fp32',
      'mlp:fp16',
      'mlp:int8',
    ]);
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
      model: 'embedder',
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
        /embedder:fp32@1 could not compute this input/,
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
