import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateModels, writeModel } from '../../scripts/generate-models.js';
import { type GeneratedModel, VARIANT_FILES } from '../../scripts/models/definitions.js';
import { ElemType, encodeModel, modelProtoType, node, valueInfo } from '../../scripts/models/onnx-builder.js';
import { fromFloat16Bits } from '../../scripts/models/quantize.js';

/** The repository `npm run models` writes and the cluster's onnx skill serves by default. */
export const MODELS_DIR = fileURLToPath(new URL('../../models', import.meta.url));

/**
 * Makes sure the generated models are there (`npm test` regenerates them in setup.sh when the
 * generator changed; a test file run on its own generates them when missing).
 */
export function ensureModels(): string {
  const files = [
    'classifier/1/model.onnx',
    ...['embedder', 'mlp'].flatMap((m) => Object.values(VARIANT_FILES).map((f) => `${m}/1/${f}`)),
  ];
  if (!files.every((f) => existsSync(join(MODELS_DIR, f)))) generateModels(MODELS_DIR);
  return MODELS_DIR;
}

/**
 * A scratch repository with copies of some generated models; removed by `cleanup`. With
 * `variants: false` each model keeps only its FP32 `model.onnx` and declares no variants (a
 * test of versions need not copy 100 MB of variants of the mlp).
 */
export function scratchRepository(
  models: string[],
  { variants = true }: { variants?: boolean } = {},
): { dir: string; cleanup: () => void } {
  ensureModels();
  const dir = mkdtempSync(join(tmpdir(), 'skillserve-models-'));
  for (const m of models) {
    cpSync(join(MODELS_DIR, m), join(dir, m), {
      recursive: true,
      filter: (src) => variants || !/\/model\.[^/]+\.onnx$/.test(src),
    });
    if (variants) continue;
    const configFile = join(dir, m, 'config.json');
    const { variants: _v, default_variant: _d, ...config } = JSON.parse(readFileSync(configFile, 'utf8'));
    writeFileSync(configFile, JSON.stringify(config, null, 2));
  }
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

/** A weight read back from a model file, as float32 values: what onnxruntime computes with. */
export interface Weight {
  dims: number[];
  /** The ONNX element type it is stored in (1 float, 10 float16, 3 int8, 7 int64). */
  dataType: number;
  data: Float32Array;
}

/**
 * Reads the initializers of an ONNX file by decoding its protobuf, so a test can compute the
 * expected outputs from the bytes on disk, independently of onnxruntime.
 */
export function readWeights(file: string): Map<string, Weight> {
  const decoded = modelProtoType().toObject(modelProtoType().decode(readFileSync(file)), { longs: Number }) as {
    graph: { initializer: { name: string; dims: number[]; dataType: number; rawData: Uint8Array }[] };
  };
  const weights = new Map<string, Weight>();
  for (const t of decoded.graph.initializer) {
    const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    const read: Record<number, [number, (i: number) => number]> = {
      [ElemType.FLOAT]: [4, (i) => view.getFloat32(i * 4, true)],
      [ElemType.FLOAT16]: [2, (i) => fromFloat16Bits(view.getUint16(i * 2, true))],
      [ElemType.INT8]: [1, (i) => view.getInt8(i)],
      [ElemType.INT64]: [8, (i) => Number(view.getBigInt64(i * 8, true))],
    };
    const [size, get] = read[t.dataType]!;
    const data = new Float32Array(t.rawData.byteLength / size);
    for (let i = 0; i < data.length; i++) data[i] = get(i);
    weights.set(t.name, { dims: t.dims ?? [], dataType: t.dataType, data });
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

/** How far a variant's outputs are from the reference's, row by row (`width` values a row). */
export interface Agreement {
  rows: number;
  /** Share of rows whose largest value is at the same place. */
  top1: number;
  maxAbsDiff: number;
  minCosine: number;
  /** The reference's gap between its two largest values, for each row where top-1 differs. */
  flipMargins: number[];
}

/** Compares `candidate` with `reference`, both row-major with `width` values a row. */
export function agreement(reference: ArrayLike<number>, candidate: ArrayLike<number>, width: number): Agreement {
  if (reference.length !== candidate.length)
    throw new Error(`${candidate.length} values, expected ${reference.length}`);
  const rows = reference.length / width;
  let same = 0;
  let maxAbsDiff = 0;
  let minCosine = 1;
  const flipMargins: number[] = [];
  for (let r = 0; r < rows; r++) {
    const a = Array.from({ length: width }, (_, j) => reference[r * width + j]!);
    const b = Array.from({ length: width }, (_, j) => candidate[r * width + j]!);
    if (argmax(a) === argmax(b)) same++;
    else flipMargins.push(topMargin(a));
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let j = 0; j < width; j++) {
      maxAbsDiff = Math.max(maxAbsDiff, Math.abs(a[j]! - b[j]!));
      dot += a[j]! * b[j]!;
      na += a[j]! ** 2;
      nb += b[j]! ** 2;
    }
    minCosine = Math.min(minCosine, dot / Math.sqrt(na * nb));
  }
  return { rows, top1: same / rows, maxAbsDiff, minCosine, flipMargins };
}

/** The gap between the two largest values: how near a tie the top-1 choice is. */
export function topMargin(v: readonly number[]): number {
  const [first, second] = [...v].sort((a, b) => b - a);
  return first! - (second ?? -Infinity);
}

/** The tasks a model with the generated variants offers: `mlp`, then `mlp:fp32`, `mlp:fp16`, `mlp:int8`. */
export function withVariants(model: string): string[] {
  return [model, ...Object.keys(VARIANT_FILES).map((v) => `${model}:${v}`)];
}
