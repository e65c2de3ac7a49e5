/**
 * The layers of the generated models, written once per precision, so that a model's FP16 and
 * INT8 variants are its FP32 graph with only the weights' storage and the arithmetic around
 * them changed. Measured on onnxruntime-node 1.30's CPU provider (docs/BENCHMARKS.md):
 *
 * - FP16 stores weights as float16 and casts them to float32 in the graph. onnxruntime has no
 *   float16 Gemm on x86 CPUs: a graph computing in float16 gets Casts to float32 inserted
 *   around every Gemm at load time and runs exactly as fast, so the variant says what runs.
 *   A constant Cast is folded at load: the file is half the size, the loaded model is not.
 * - INT8 quantizes weights per output column (symmetric, scale = max|w| / 127) and activations
 *   dynamically per row (uint8, zero point 0: they follow a ReLU), multiplies in integers
 *   (MatMulInteger, u8×s8 → exact int32) and rescales in float32. Per row rather than per
 *   tensor (DynamicQuantizeLinear) because then a row's result does not depend on the other
 *   rows of its batch: the dispatcher's batching and the cache stay exact.
 */
import {
  ElemType,
  float16Initializer,
  floatInitializer,
  type Initializer,
  int64Initializer,
  int8Initializer,
  node,
} from './onnx-builder.js';
import { quantizeColumns, toFloat16 } from './quantize.js';

/** What a layer adds to a graph. */
export interface Part {
  nodes: ReturnType<typeof node>[];
  initializers: Initializer[];
}

export type LayerPrecision = 'FP32' | 'FP16' | 'INT8';

/** Constants the INT8 layers share; added to a graph once (see {@link int8Constants}). */
const INV_255 = 'q_inv255';
const TINY = 'q_tiny';
const AXIS_1 = 'q_axis1';

/** The shared constants of INT8 layers: 1/255, a floor for an all-zero row's scale, axes [1]. */
export function int8Constants(): Initializer[] {
  return [
    floatInitializer(INV_255, [], new Float32Array([1 / 255])),
    floatInitializer(TINY, [], new Float32Array([1e-30])),
    int64Initializer(AXIS_1, [1], [1]),
  ];
}

/**
 * y = x·W + b for `x` [batch, K] and `w` [K, N] row-major. INT8 requires x ≥ 0 (a ReLU's
 * output) and the constants of {@link int8Constants} in the graph.
 */
export function dense(
  precision: LayerPrecision,
  names: { x: string; y: string; w: string; b: string },
  w: Float32Array,
  b: Float32Array,
  k: number,
  n: number,
): Part {
  const { x, y } = names;
  if (precision === 'FP32') {
    return {
      nodes: [node('Gemm', [x, names.w, names.b], [y])],
      initializers: [floatInitializer(names.w, [k, n], w), floatInitializer(names.b, [n], b)],
    };
  }
  if (precision === 'FP16') {
    const [w16, b16] = [`${names.w}_fp16`, `${names.b}_fp16`];
    return {
      nodes: [
        node('Cast', [w16], [names.w], { to: ElemType.FLOAT }),
        node('Cast', [b16], [names.b], { to: ElemType.FLOAT }),
        node('Gemm', [x, names.w, names.b], [y]),
      ],
      initializers: [float16Initializer(w16, [k, n], toFloat16(w)), float16Initializer(b16, [n], toFloat16(b))],
    };
  }
  const { q, scale } = quantizeColumns(w, k, n);
  const [wq, ws] = [`${names.w}_int8`, `${names.w}_scale`];
  const t = (s: string) => `${y}_${s}`;
  return {
    nodes: [
      // Each row's scale: its largest value over 255 (a row of zeros gets a tiny one, not 0).
      node('ReduceMax', [x], [t('xmax')], { axes: [1], keepdims: 0 }),
      node('Mul', [t('xmax'), INV_255], [t('xs0')]),
      node('Max', [t('xs0'), TINY], [t('xs')]),
      node('QuantizeLinear', [x, t('xs')], [t('xq')], { axis: 0 }),
      node('MatMulInteger', [t('xq'), wq], [t('acc')]),
      node('Cast', [t('acc')], [t('accf')], { to: ElemType.FLOAT }),
      // Not Mul(acc, Mul(xs, ws)): onnxruntime would fuse that into MatMulIntegerToFloat,
      // whose A scale is per tensor or per column, never per row.
      node('Mul', [t('accf'), ws], [t('yw')]),
      node('Unsqueeze', [t('xs'), AXIS_1], [t('xs_col')]),
      node('Mul', [t('yw'), t('xs_col')], [t('yx')]),
      node('Add', [t('yx'), names.b], [y]),
    ],
    initializers: [int8Initializer(wq, [k, n], q), floatInitializer(ws, [n], scale), floatInitializer(names.b, [n], b)],
  };
}

/**
 * The mean of the rows of `table` [vocab, width] picked by `ids` [batch, length]. FP16 and
 * INT8 gather the stored rows first and convert only those, so the table stays compressed in
 * memory; INT8 keeps one scale per row (per token).
 */
export function meanEmbedding(
  precision: LayerPrecision,
  names: { ids: string; y: string; table: string },
  table: Float32Array,
  vocab: number,
  width: number,
): Part {
  const { ids, y } = names;
  const t = (s: string) => `${y}_${s}`;
  const mean = node('ReduceMean', [t('rows')], [y], { axes: [1], keepdims: 0 });
  if (precision === 'FP32') {
    return {
      nodes: [node('Gather', [names.table, ids], [t('rows')], { axis: 0 }), mean],
      initializers: [floatInitializer(names.table, [vocab, width], table)],
    };
  }
  if (precision === 'FP16') {
    const t16 = `${names.table}_fp16`;
    return {
      nodes: [
        node('Gather', [t16, ids], [t('rows16')], { axis: 0 }),
        node('Cast', [t('rows16')], [t('rows')], { to: ElemType.FLOAT }),
        mean,
      ],
      initializers: [float16Initializer(t16, [vocab, width], toFloat16(table))],
    };
  }
  // Per-row scales: quantize the transpose per column, then transpose back.
  const transposed = new Float32Array(vocab * width);
  for (let v = 0; v < vocab; v++) for (let j = 0; j < width; j++) transposed[j * vocab + v] = table[v * width + j]!;
  const qt = quantizeColumns(transposed, width, vocab);
  const q = new Int8Array(vocab * width);
  for (let v = 0; v < vocab; v++) for (let j = 0; j < width; j++) q[v * width + j] = qt.q[j * vocab + v]!;
  const [tq, ts] = [`${names.table}_int8`, `${names.table}_scale`];
  return {
    nodes: [
      node('Gather', [tq, ids], [t('rowsq')], { axis: 0 }),
      node('Cast', [t('rowsq')], [t('rowsf')], { to: ElemType.FLOAT }),
      node('Gather', [ts, ids], [t('scales')], { axis: 0 }),
      node('Mul', [t('rowsf'), t('scales')], [t('rows')]),
      mean,
    ],
    initializers: [int8Initializer(tq, [vocab, width], q), floatInitializer(ts, [vocab, 1], qt.scale)],
  };
}
