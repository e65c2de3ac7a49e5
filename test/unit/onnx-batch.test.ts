import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  chunk,
  type PreparedItem,
  prepareItem,
  splitOutputs,
  stackFeeds,
} from '../../src/skills/backends/onnx/batch.js';
import {
  type ModelConfig,
  modelConfigSchema,
  parseModelConfig,
  servedVersions,
  variantSpecs,
} from '../../src/skills/backends/onnx/model-config.js';
import { makeTensor, tensorValues } from '../../src/skills/tensors.js';

const config: ModelConfig = modelConfigSchema.parse({
  max_batch_size: 4,
  inputs: [
    { name: 'x', datatype: 'FP32', shape: [-1, 2] },
    { name: 'ids', datatype: 'INT64', shape: [-1, -1] },
  ],
  outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 3] }],
});

const item = (rows: number, idsLen: number, base = 0) => {
  const p = prepareItem('m', config, [
    makeTensor(
      'x',
      'FP32',
      [rows, 2],
      Array.from({ length: rows * 2 }, (_, i) => base + i),
    ),
    makeTensor(
      'ids',
      'INT64',
      [rows, idsLen],
      Array.from({ length: rows * idsLen }, (_, i) => i),
    ),
  ]);
  assert.ok(p.ok, JSON.stringify(p));
  return p.item;
};

describe('onnx batching', () => {
  it('prepares typed arrays and keys items by their non-batch dimensions', () => {
    const a = item(2, 3);
    assert.equal(a.rows, 2);
    assert.ok(a.inputs.get('x')!.data instanceof Float32Array);
    assert.deepEqual([...(a.inputs.get('ids')!.data as BigInt64Array)], [0n, 1n, 2n, 3n, 4n, 5n]);
    assert.equal(a.stackKey, item(1, 3).stackKey);
    assert.notEqual(a.stackKey, item(1, 4).stackKey);
  });

  it('rejects a non-integer INT64 and names the input', () => {
    const p = prepareItem('m', config, [
      makeTensor('x', 'FP32', [1, 2], [1, 2]),
      makeTensor('ids', 'INT64', [1, 2], [1, 2.5]),
    ]);
    assert.ok(!p.ok);
    assert.equal(p.error.code, 'BAD_REQUEST');
    assert.match(p.error.message, /input "ids": value 1 \(2.5\) is not an integer/);
    assert.deepEqual(p.error.details, { model: 'm', input: 'ids' });
  });

  it('chunks by rows, never splitting an item, one item a run when the model does not batch', () => {
    const rowsOf = (n: number) => n;
    assert.deepEqual(chunk([1, 2, 1, 3, 4, 1], 4, rowsOf), [[1, 2, 1], [3], [4], [1]]);
    assert.deepEqual(chunk([1, 1], 0, rowsOf), [[1], [1]]);
  });

  it('stacks along the batch dimension and splits outputs back per item', async () => {
    const items: PreparedItem[] = [item(1, 2, 0), item(2, 2, 10)];
    const feeds = await stackFeeds(config, items);
    assert.deepEqual(feeds.x!.dims, [3, 2]);
    assert.deepEqual([...(feeds.x!.data as Float32Array)], [0, 1, 10, 11, 12, 13]);
    assert.deepEqual(feeds.ids!.dims, [3, 2]);
    // A stand-in model output: row r is [r, r, r].
    const y = { dims: [3, 3], data: Float32Array.from([0, 0, 0, 1, 1, 1, 2, 2, 2]), type: 'float32' };
    const split = splitOutputs(config, { y } as never, items);
    assert.deepEqual(
      split[0]!.map((t) => [t.shape, tensorValues(t)]),
      [
        [
          [1, 3],
          [0, 0, 0],
        ],
      ],
    );
    assert.deepEqual(
      split[1]!.map((t) => [t.shape, tensorValues(t)]),
      [
        [
          [2, 3],
          [1, 1, 1, 2, 2, 2],
        ],
      ],
    );
  });
});

describe('onnx model config', () => {
  const valid = {
    max_batch_size: 8,
    inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }],
    outputs: [{ name: 'out', datatype: 'FP32', shape: [-1, 3] }],
  };
  const problem = (json: unknown) => {
    try {
      parseModelConfig(JSON.stringify(json), 'models/m/config.json', 'm');
      return 'OK';
    } catch (err) {
      return (err as Error).message;
    }
  };

  it('accepts a valid config with defaults', () => {
    const c = parseModelConfig(JSON.stringify(valid), 'f', 'm');
    assert.deepEqual(c.version_policy, { latest: 1 });
    assert.equal(c.deterministic, true);
  });

  it('names the file, the field and the problem', () => {
    assert.match(
      problem({ ...valid, inputs: [{ name: 'input', datatype: 'FLOAT32', shape: [-1, 4] }] }),
      /^models\/m\/config.json: inputs.0.datatype: /,
    );
    assert.match(
      problem({ ...valid, inputs: [{ name: 'input', datatype: 'FP32', shape: [4] }] }),
      /inputs.0.shape: input: with max_batch_size > 0 the first dimension is the batch, written -1 \(got \[4\]\)/,
    );
    assert.match(problem({ ...valid, outputs: [] }), /outputs: /);
    assert.match(problem({ ...valid, extra: 1 }), /config.json: .*extra/);
    assert.match(problem({ ...valid, name: 'other' }), /name "other" differs from its directory "m"/);
    assert.match(
      problem({ ...valid, inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 0] }] }),
      /positive size or -1/,
    );
    assert.match(
      problem({ ...valid, dynamic_batching: { preferred_batch_sizes: [16] } }),
      /16 is over max_batch_size 8/,
    );
    assert.match(
      (() => {
        try {
          parseModelConfig('{oops', 'models/m/config.json', 'm');
          return '';
        } catch (err) {
          return (err as Error).message;
        }
      })(),
      /models\/m\/config.json: not valid JSON/,
    );
  });

  const variants = {
    fp32: { precision: 'FP32', file: 'model.onnx' },
    int8: { precision: 'INT8', file: 'model.int8.onnx' },
  };
  it('lists the files, the default variant first (the first listed unless named)', () => {
    assert.deepEqual(variantSpecs(modelConfigSchema.parse(valid)), [{ file: 'model.onnx', isDefault: true }]);
    assert.deepEqual(
      variantSpecs(modelConfigSchema.parse({ ...valid, variants })).map(
        (s) => `${s.name}:${s.precision}:${s.isDefault}`,
      ),
      ['fp32:FP32:true', 'int8:INT8:false'],
    );
    assert.deepEqual(
      variantSpecs(modelConfigSchema.parse({ ...valid, variants, default_variant: 'int8' })).map((s) => s.file),
      ['model.int8.onnx', 'model.onnx'],
    );
  });

  it('refuses what cannot be served, naming the field', () => {
    assert.match(
      problem({ ...valid, variants, default_variant: 'fp16' }),
      /default_variant: "fp16" is not one of the variants \(fp32, int8\)/,
    );
    assert.match(problem({ ...valid, default_variant: 'fp32' }), /default_variant: .*none declared/);
    assert.match(problem({ ...valid, variants: {} }), /variants: name at least one variant/);
    assert.match(problem({ ...valid, variants: { 'Big:One': variants.fp32 } }), /variants\.Big:One: a variant name is/);
    assert.match(
      problem({ ...valid, variants: { a: { precision: 'INT4', file: 'a.onnx' } } }),
      /variants\.a\.precision/,
    );
    assert.match(
      problem({ ...valid, variants: { a: { precision: 'FP16', file: '../a.onnx' } } }),
      /variants\.a\.file: a file name/,
    );
    assert.match(
      problem({ ...valid, variants: { a: variants.fp32, b: { precision: 'FP16', file: 'model.onnx' } } }),
      /variants\.b\.file: model.onnx is variant "a"'s file too/,
    );
  });

  it('serves the versions its policy names, newest first', () => {
    assert.deepEqual(servedVersions({ latest: 1 }, [1, 3, 2]), [3]);
    assert.deepEqual(servedVersions({ latest: 2 }, [1, 3, 2]), [3, 2]);
    assert.deepEqual(servedVersions({ all: true }, [1, 3, 2]), [3, 2, 1]);
    assert.deepEqual(servedVersions({ specific: [1, 5] }, [1, 3, 2]), [1]);
  });
});
