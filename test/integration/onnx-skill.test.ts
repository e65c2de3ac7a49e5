import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { EMBEDDER_VOCAB, EMBEDDER_WIDTH } from '../../scripts/models/definitions.js';
import { createOnnxBackend } from '../../src/skills/backends/onnx/index.js';
import { SkillClient } from '../../src/skills/client.js';
import type { WireInferRequest, WireInferResponse, WireTensor } from '../../src/skills/proto.js';
import { createSkillServer, type SkillServer } from '../../src/skills/server.js';
import { makeTensor, type TensorDatatype, tensorValues } from '../../src/skills/tensors.js';
import {
  adderModel,
  argmax,
  assertClose,
  dense,
  readWeights,
  relu,
  row,
  scratchRepository,
  softmax,
  type Weight,
  withVariants,
  writeModel,
} from '../helpers/models.js';

const t = (name: string, datatype: TensorDatatype, shape: number[], values: (number | boolean)[]) =>
  makeTensor(name, datatype, shape, values);
const req = (id: string, model: string, tensors: WireTensor[], modelVersion = ''): WireInferRequest => ({
  id,
  tensors: { tensors },
  parameters: { task: model, maxTokens: 0, modelVersion },
});
const out = (res: WireInferResponse, name: string) => {
  assert.equal(res.error?.code ?? '', '', JSON.stringify(res.error));
  const tensor = res.tensors?.tensors.find((x) => x.name === name);
  assert.ok(tensor, `output ${name} in ${JSON.stringify(res)}`);
  return { shape: tensor.shape.map(Number), values: tensorValues(tensor) as number[] };
};
const rows = (values: number[], width: number) =>
  Array.from({ length: values.length / width }, (_, i) => values.slice(i * width, (i + 1) * width));

describe('the onnx skill over real gRPC, on onnxruntime', () => {
  let repo: ReturnType<typeof scratchRepository>;
  let server: SkillServer;
  let client: SkillClient;
  let w: (model: string) => Map<string, Weight>;

  before(async () => {
    repo = scratchRepository(['classifier', 'embedder', 'mlp']);
    writeModel(repo.dir, adderModel());
    const cache = new Map<string, Map<string, Weight>>();
    w = (model) => {
      if (!cache.has(model)) cache.set(model, readWeights(join(repo.dir, model, '1', 'model.onnx')));
      return cache.get(model)!;
    };
    const logger = pino({ level: 'silent' });
    server = createSkillServer({
      name: 'onnx',
      backend: createOnnxBackend({ repository: repo.dir, only: [], idleUnloadMs: 0, intraOpThreads: 1, logger }),
      logger,
      registry: new Registry(),
    });
    client = new SkillClient('onnx', `127.0.0.1:${await server.start('127.0.0.1', 0)}`);
  });

  after(async () => {
    client?.close();
    await server?.stop(1_000);
    repo?.cleanup();
  });

  /** The classifier computed in plain JS from the weights in the file. */
  const classify = (x: number[]) => {
    const logits = dense(x, w('classifier').get('W')!, w('classifier').get('B')!);
    return { probabilities: softmax(logits), label: argmax(logits) };
  };

  it('classifier: probabilities and labels match the weights on disk', async () => {
    const xs = [row(4, 1), row(4, 2), [5, -3, 0.5, 2]];
    const res = await client.infer(req('c', 'classifier', [t('input', 'FP32', [3, 4], xs.flat())]), 10_000);
    assert.equal(res.id, 'c');
    assert.equal(res.model, 'classifier@1');
    const p = out(res, 'probabilities');
    const label = out(res, 'label');
    assert.deepEqual(p.shape, [3, 3]);
    assert.deepEqual(label.shape, [3]);
    rows(p.values, 3).forEach((r, i) => assertClose(r, classify(xs[i]!).probabilities, `probabilities row ${i}`));
    assert.deepEqual(
      label.values,
      xs.map((x) => classify(x).label),
    );
  });

  it('mlp: logits match a plain-JS forward pass through every layer', async () => {
    const x = row(256, 7);
    const res = await client.infer(req('m', 'mlp', [t('input', 'FP32', [1, 256], x)]), 10_000);
    const m = w('mlp');
    let h = x;
    for (let i = 0; i < 4; i++) {
      h = dense(h, m.get(`W${i}`)!, m.get(`B${i}`)!);
      if (i < 3) h = relu(h);
    }
    const logits = out(res, 'logits');
    assert.deepEqual(logits.shape, [1, 16]);
    assertClose(logits.values, h, 'logits', 1e-3);
  });

  it('embedder: INT64 ids give the mean of their embeddings', async () => {
    const ids = [1, 2, 8000];
    const res = await client.infer(req('e', 'embedder:fp32', [t('ids', 'INT64', [1, 3], ids)]), 10_000);
    assert.equal(res.model, 'embedder:fp32@1');
    const e = w('embedder').get('E')!;
    const width = EMBEDDER_WIDTH;
    const expected = Array.from({ length: width }, (_, j) => ids.reduce((s, id) => s + e.data[id * width + j]!, 0) / 3);
    assertClose(out(res, 'embedding').values, expected, 'embedding');
  });

  it('InferBatch stacks items, splits runs at max_batch_size, and equals each item run alone', async () => {
    // 70 classifier rows (max_batch_size 64: two runs), mlp, adder and embedder items of two lengths.
    const items: WireInferRequest[] = [];
    for (let i = 0; i < 35; i++)
      items.push(req(`c${i}`, 'classifier', [t('input', 'FP32', [2, 4], [...row(4, i), ...row(4, i + 100)])]));
    for (let i = 0; i < 5; i++) items.push(req(`m${i}`, 'mlp', [t('input', 'FP32', [1, 256], row(256, i))]));
    items.push(req('a', 'adder', [t('a', 'FP32', [2, 2], [1, 2, 3, 4]), t('b', 'FP32', [2, 2], [10, 20, 30, 40])]));
    items.push(req('e2', 'embedder', [t('ids', 'INT64', [1, 2], [3, 4])]));
    items.push(req('e3', 'embedder', [t('ids', 'INT64', [2, 3], [5, 6, 7, 8, 9, 10])]));
    const batch = await client.inferBatch(items, 30_000);
    assert.equal(batch.timing?.batchSize, items.length);
    assert.deepEqual(
      batch.items.map((i) => i.id),
      items.map((i) => i.id),
    );
    const alone = await Promise.all(items.map((i) => client.infer(i, 10_000)));
    batch.items.forEach((res, i) => {
      assert.equal(res.model, alone[i]!.model);
      for (const tensor of alone[i]!.tensors!.tensors) {
        const a = out(alone[i]!, tensor.name);
        const b = out(res, tensor.name);
        assert.deepEqual(b.shape, a.shape, `${res.id} ${tensor.name}`);
        assertClose(b.values, a.values, `${res.id} ${tensor.name}`, 1e-5);
      }
    });
    assert.deepEqual(out(batch.items[40]!, 'sum').values, [11, 22, 33, 44]);
    rows(out(batch.items[0]!, 'probabilities').values, 3).forEach((r, j) =>
      assertClose(r, classify(row(4, j === 0 ? 0 : 100)).probabilities, `c0 row ${j}`),
    );
  });

  describe('a bad item is a BAD_REQUEST naming the input, and fails alone', () => {
    const good = () => req('good', 'classifier', [t('input', 'FP32', [1, 4], [1, 2, 3, 4])]);
    const cases: [string, WireInferRequest, RegExp][] = [
      [
        'wrong datatype',
        req('x', 'classifier', [t('input', 'INT64', [1, 4], [1, 2, 3, 4])]),
        /input "input": datatype INT64, expected FP32/,
      ],
      [
        'wrong shape',
        req('x', 'classifier', [t('input', 'FP32', [1, 5], [1, 2, 3, 4, 5])]),
        /input "input": shape \[1,5\] does not fit \[-1,4\]/,
      ],
      [
        'wrong rank',
        req('x', 'classifier', [t('input', 'FP32', [4], [1, 2, 3, 4])]),
        /input "input": shape \[4\] does not fit/,
      ],
      [
        'too few values',
        req('x', 'classifier', [t('input', 'FP32', [2, 4], [1, 2, 3])]),
        /input "input": shape \[2,4\] needs 8 values in fp32_data, got 3/,
      ],
      [
        'values in the wrong field',
        req(
          'x',
          'classifier',
          [t('input', 'FP64', [1, 4], [1, 2, 3, 4])].map((x) => ({ ...x, datatype: 'FP32' })),
        ),
        /needs 4 values in fp32_data, got 0/,
      ],
      ['a missing input', req('x', 'adder', [t('a', 'FP32', [1, 2], [1, 2])]), /missing input "b" \(FP32 \[-1,2\]\)/],
      [
        'an unknown input',
        req('x', 'classifier', [t('features', 'FP32', [1, 4], [1, 2, 3, 4])]),
        /unknown input "features" for model "classifier"; it takes input \(FP32 \[-1,4\]\)/,
      ],
      [
        'an input given twice',
        req('x', 'adder', [t('a', 'FP32', [1, 2], [1, 2]), t('a', 'FP32', [1, 2], [1, 2])]),
        /input "a" is given twice/,
      ],
      [
        'a batch over max_batch_size',
        req('x', 'adder', [t('a', 'FP32', [9, 2], Array(18).fill(1)), t('b', 'FP32', [9, 2], Array(18).fill(1))]),
        /input "a": batch of 9 is over max_batch_size 8/,
      ],
      [
        'inputs with different batch sizes',
        req('x', 'adder', [t('a', 'FP32', [2, 2], [1, 2, 3, 4]), t('b', 'FP32', [3, 2], [1, 2, 3, 4, 5, 6])]),
        /input "b": batch dimension 3 differs from 2 of input "a"/,
      ],
      [
        'an unknown model',
        req('x', 'nope', [t('input', 'FP32', [1, 4], [1, 2, 3, 4])]),
        /unknown model "nope"; models: adder, classifier, embedder, mlp/,
      ],
      [
        'a version that does not serve',
        req('x', 'classifier', [t('input', 'FP32', [1, 4], [1, 2, 3, 4])], '7'),
        /model "classifier" has no version "7" serving; versions: 1/,
      ],
      [
        'text for a tensor model',
        { id: 'x', text: 'hello', parameters: { task: 'classifier', maxTokens: 0, modelVersion: '' } },
        /model "classifier" takes tensor inputs: input \(FP32 \[-1,4\]\)/,
      ],
      [
        'an id the model rejects at run time',
        req('x', 'embedder', [t('ids', 'INT64', [1, 2], [1, EMBEDDER_VOCAB])]),
        /embedder:int8@1 could not compute this input: .*out of data bounds/,
      ],
    ];
    for (const [name, bad, message] of cases) {
      it(name, async () => {
        const sameModel =
          bad.parameters!.task === 'embedder' ? req('good', 'embedder', [t('ids', 'INT64', [1, 2], [1, 2])]) : good();
        const res = await client.inferBatch([good(), bad, sameModel], 10_000);
        const [first, failed, third] = res.items;
        assert.equal(failed!.error?.code, 'BAD_REQUEST', JSON.stringify(failed));
        assert.match(failed!.error!.message, message);
        assert.equal(failed!.output, undefined);
        for (const ok of [first!, third!]) assert.equal(ok.error?.code ?? '', '', JSON.stringify(ok.error));
        // Infer reports it the same way: in the item, not as a failed call.
        const single = await client.infer(bad, 10_000);
        assert.equal(single.error?.code, 'BAD_REQUEST');
      });
    }
  });

  it('GetMetrics lists every model version and its state, without paths', async () => {
    const m = await client.metrics(2_000);
    assert.equal(m.backend, 'onnx');
    assert.deepEqual(m.tasks, ['adder', 'classifier', ...withVariants('embedder'), ...withVariants('mlp')]);
    assert.equal(m.modelState, 'READY');
    assert.deepEqual(
      m.models.map((x) => `${x.name}@${x.version}:${x.state}`),
      ['adder@1:READY', 'classifier@1:READY', 'embedder@1:READY', 'mlp@1:READY'],
    );
    assert.ok(!JSON.stringify(m).includes('/'), 'no file paths');
    assert.ok(m.errorsTotal > 0);
  });
});
