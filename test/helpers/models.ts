import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateModels, writeModel } from '../../scripts/generate-models.js';
import type { GeneratedModel } from '../../scripts/models/definitions.js';
import { ElemType, encodeModel, modelProtoType, node, valueInfo } from '../../scripts/models/onnx-builder.js';

/** The repository `npm run models` writes and the cluster's onnx skill serves by default. */
export const MODELS_DIR = fileURLToPath(new URL('../../models', import.meta.url));

/**
 * Makes sure the generated models are there (`npm test` regenerates them in setup.sh when the
 * generator changed; a test file run on its own generates them when missing).
 */
export function ensureModels(): string {
  const present = ['classifier', 'embedder', 'mlp'].every((m) => existsSync(join(MODELS_DIR, m, '1', 'model.onnx')));
  if (!present) generateModels(MODELS_DIR);
  return MODELS_DIR;
}

/** A scratch repository with copies of some generated models; removed by `cleanup`. */
export function scratchRepository(models: string[]): { dir: string; cleanup: () => void } {
  ensureModels();
  const dir = mkdtempSync(join(tmpdir(), 'skillserve-models-'));
  for (const m of models) cpSync(join(MODELS_DIR, m), join(dir, m), { recursive: true });
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `adder`: two inputs, a + b; the model for the missing-input and batch-mismatch cases. */
export function adderModel(): GeneratedModel {
  return {
    name: 'adder',
    onnx: encodeModel({
      name: 'adder',
      doc: 'a + b',
      inputs: [valueInfo('a', ElemType.FLOAT, ['batch', 2]), valueInfo('b', ElemType.FLOAT, ['batch', 2])],
      outputs: [valueInfo('sum', ElemType.FLOAT, ['batch', 2])],
      initializers: [],
      nodes: [node('Add', ['a', 'b'], ['sum'])],
    }),
    config: {
      max_batch_size: 8,
      inputs: [
        { name: 'a', datatype: 'FP32', shape: [-1, 2] },
        { name: 'b', datatype: 'FP32', shape: [-1, 2] },
      ],
      outputs: [{ name: 'sum', datatype: 'FP32', shape: [-1, 2] }],
    },
  };
}

export { writeModel };

/** A float32 weight read back from a model file: what onnxruntime computes with. */
export interface Weight {
  dims: number[];
  data: Float32Array;
}

/**
 * Reads the initializers of an ONNX file by decoding its protobuf, so a test can compute the
 * expected outputs from the bytes on disk, independently of onnxruntime.
 */
export function readWeights(file: string): Map<string, Weight> {
  const decoded = modelProtoType().toObject(modelProtoType().decode(readFileSync(file)), { longs: Number }) as {
    graph: { initializer: { name: string; dims: number[]; rawData: Uint8Array }[] };
  };
  const weights = new Map<string, Weight>();
  for (const t of decoded.graph.initializer) {
    const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    const data = new Float32Array(t.rawData.byteLength / 4);
    for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(i * 4, true);
    weights.set(t.name, { dims: t.dims, data });
  }
  return weights;
}

/** x·W + b for one row, in double precision. */
export function dense(x: readonly number[], w: Weight, b: Weight): number[] {
  const [k, n] = w.dims as [number, number];
  const y: number[] = [];
  for (let j = 0; j < n; j++) {
    let sum = b.data[j]!;
    for (let i = 0; i < k; i++) sum += x[i]! * w.data[i * n + j]!;
    y.push(sum);
  }
  return y;
}

export function softmax(v: readonly number[]): number[] {
  const max = Math.max(...v);
  const e = v.map((x) => Math.exp(x - max));
  const total = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / total);
}

export const relu = (v: readonly number[]) => v.map((x) => Math.max(0, x));

export function argmax(v: readonly number[]): number {
  return v.reduce((best, x, i) => (x > v[best]! ? i : best), 0);
}

/** Asserts two vectors agree to float32 accuracy; the message says where they differ. */
export function assertClose(actual: readonly number[], expected: readonly number[], what: string, tol = 1e-4): void {
  if (actual.length !== expected.length)
    throw new Error(`${what}: ${actual.length} values, expected ${expected.length}`);
  actual.forEach((a, i) => {
    const e = expected[i]!;
    if (Math.abs(a - e) > tol * Math.max(1, Math.abs(e))) throw new Error(`${what}[${i}]: ${a}, expected ${e}`);
  });
}

/** A deterministic input row: `width` values in [-1, 1) from `seed`. */
export function row(width: number, seed: number): number[] {
  return Array.from({ length: width }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) % 1);
}
