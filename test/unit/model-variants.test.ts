import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { embedder } from '../../scripts/models/definitions.js';
import { dense, int8Constants } from '../../scripts/models/layers.js';
import { ElemType, encodeModel, valueInfo } from '../../scripts/models/onnx-builder.js';
import { fromFloat16Bits, quantizeColumns, toFloat16Bits } from '../../scripts/models/quantize.js';
import { summarizeWeights } from '../../src/skills/backends/onnx/weights.js';

const dir = mkdtempSync(join(tmpdir(), 'skillserve-variants-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('float16 conversion', () => {
  it('rounds to the nearest binary16, ties to even, like numpy astype(float16)', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff], // the largest finite half
      [65520, 0x7c00], // rounds up to Infinity
      [1e6, 0x7c00],
      [2 ** -24, 0x0001], // the smallest subnormal
      [2 ** -26, 0x0000], // below half of it: zero
      [1 + 2 ** -11, 0x3c00], // a tie between 1 and 1+2^-10: to the even one
      [1 + 3 * 2 ** -11, 0x3c02], // a tie the other way
      [0.1, 0x2e66],
      [Infinity, 0x7c00],
    ];
    for (const [value, bits] of cases) assert.equal(toFloat16Bits(value), bits, `${value}`);
    assert.ok(Number.isNaN(fromFloat16Bits(toFloat16Bits(NaN))));
  });

  it('round-trips within half a unit in the last place', () => {
    for (let i = 0; i < 2000; i++) {
      const v = Math.sin(i * 1.7) * 10 ** ((i % 9) - 4);
      const back = fromFloat16Bits(toFloat16Bits(v));
      assert.ok(Math.abs(back - v) <= Math.abs(v) * 2 ** -11 + 2 ** -25, `${v} → ${back}`);
    }
  });
});

describe('per-column int8 quantization', () => {
  it('gives each column its own symmetric scale, max|w| / 127, and rounds to the nearest step', () => {
    // 3 rows × 2 columns, row-major.
    const w = new Float32Array([0.5, -10, -1, 5, 0.25, 2.5]);
    const { q, scale } = quantizeColumns(w, 3, 2);
    assert.deepEqual([...scale], [Math.fround(1 / 127), Math.fround(10 / 127)]);
    assert.deepEqual([...q], [64, -127, -127, 64, 32, 32]);
    for (let i = 0; i < w.length; i++) assert.ok(Math.abs(q[i]! * scale[i % 2]! - w[i]!) <= scale[i % 2]! / 2 + 1e-7);
  });

  it('an all-zero column gets scale 1 rather than 0', () => {
    const { q, scale } = quantizeColumns(new Float32Array([0, 1, 0, -1]), 2, 2);
    assert.equal(scale[0], 1);
    assert.deepEqual([...q], [0, 127, 0, -127]);
  });
});

describe('the precision a model file stores its weights in', () => {
  const write = (name: string, bytes: Uint8Array | string) => {
    const file = join(dir, name);
    writeFileSync(file, bytes);
    return file;
  };
  const layer = (precision: 'FP32' | 'FP16' | 'INT8') => {
    const part = dense(
      precision,
      { x: 'x', y: 'y', w: 'W', b: 'B' },
      new Float32Array(64 * 8).fill(0.5),
      new Float32Array(8),
      64,
      8,
    );
    return encodeModel({
      name: 'm',
      doc: precision,
      inputs: [valueInfo('x', ElemType.FLOAT, ['batch', 64])],
      outputs: [valueInfo('y', ElemType.FLOAT, ['batch', 8])],
      nodes: part.nodes,
      initializers: [...(precision === 'INT8' ? int8Constants() : []), ...part.initializers],
    });
  };

  it('counts weight values by type and names the one that holds the most', async () => {
    assert.deepEqual(await summarizeWeights(write('fp32.onnx', layer('FP32'))), {
      counts: { FP32: 64 * 8 + 8 },
      precision: 'FP32',
    });
    assert.deepEqual(await summarizeWeights(write('fp16.onnx', layer('FP16'))), {
      counts: { FP16: 64 * 8 + 8 },
      precision: 'FP16',
    });
    // int8 weights and the second pass's uint8 zero point; float32 scales, bias and the shared
    // constants (1/255, 1/254, the scale floor, 0, 128): 8 + 8 + 5.
    assert.deepEqual(await summarizeWeights(write('int8.onnx', layer('INT8'))), {
      counts: { INT8: 64 * 8 + 1, FP32: 21 },
      precision: 'INT8',
    });
    const generated = embedder();
    assert.equal((await summarizeWeights(write('e.onnx', generated.onnx))).precision, 'FP32');
    for (const { file, onnx } of generated.files ?? []) {
      assert.equal((await summarizeWeights(write(file, onnx))).precision, file.includes('int8') ? 'INT8' : 'FP16');
    }
  });

  it('says where a file is not an ONNX model', async () => {
    await assert.rejects(summarizeWeights(write('text.onnx', 'hello, world\n')), /wire type|no graph/);
    await assert.rejects(summarizeWeights(write('cut.onnx', layer('FP32').subarray(0, 300))), /past the end|truncated/);
    await assert.rejects(summarizeWeights(join(dir, 'absent.onnx')), /ENOENT/);
  });
});
