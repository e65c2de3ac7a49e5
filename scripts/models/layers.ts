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
 *   The activations' rounding error is quantized too, in a second uint8 pass at 1/254 of the
 *   first pass's scale, and multiplied by the same int8 weights: activations then carry ~16 bits
 *   and only the weights' rounding is left. Measured on `mlp` (4,096 generated rows): one pass
 *   agreed with FP32 on 98.8 % of top-1 labels (max |Δ| 0.035) at ~5× FP32's speed; two passes
 *   agree on 99.3 % (max |Δ| 0.017) at ~2.7×. Weight-only INT8 (com.microsoft MatMulNBits,
 *   blocks of 128) agreed on 99.3 % too but ran ~7× slower than FP32 on this CPU: onnxruntime
 *   has no fast 8-bit kernel for it.
 */
import {
  ElemType,
  float16Initializer,
  floatInitializer,
  type Initializer,
  int64Initializer,
  int8Initializer,
  node,
  uint8Initializer,
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
const INV_254 = 'q_inv254';
const TINY = 'q_tiny';
const AXIS_1 = 'q_axis1';
const ZERO = 'q_zero';
const MID = 'q_mid';
const MID_U8 = 'q_mid_u8';

/**
 * The shared constants of INT8 layers: 1/255 and 1/254 (the two passes' scales), a floor for an
 * all-zero row's scale, axes [1], and the second pass's zero point 128 (as float, to build the
 * per-row zero points QuantizeLinear wants, and as the uint8 scalar MatMulInteger wants).
 */
export function int8Constants(): Initializer[] {
  return [
    floatInitializer(INV_255, [], new Float32Array([1 / 255])),
    floatInitializer(INV_254, [], new Float32Array([1 / 254])),
    floatInitializer(TINY, [], new Float32Array([1e-30])),
    int64Initializer(AXIS_1, [1], [1]),
    floatInitializer(ZERO, [], new Float32Array([0])),
    floatInitializer(MID, [], new Float32Array([128])),
    uint8Initializer(MID_U8, [], new Uint8Array([128])),
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
      // Second pass: what the first rounded away, within ±xs/2, at xs/254 around zero point 128.
      node('DequantizeLinear', [t('xq'), t('xs')], [t('xd')], { axis: 0 }),
      node('Sub', [x, t('xd')], [t('r')]),
      node('Mul', [t('xs'), INV_254], [t('rs')]),
      node('Mul', [t('xs'), ZERO], [t('rz0')]),
      node('Add', [t('rz0'), MID], [t('rzf')]),
      node('Cast', [t('rzf')], [t('rz')], { to: ElemType.UINT8 }),
      node('QuantizeLinear', [t('r'), t('rs'), t('rz')], [t('rq')], { axis: 0 }),
      node('MatMulInteger', [t('xq'), wq], [t('acc')]),
      node('MatMulInteger', [t('rq'), wq, MID_U8], [t('racc')]),
      // Not Mul(acc, Mul(xs, ws)): onnxruntime would fuse that into MatMulIntegerToFloat,
      // whose A scale is per tensor or per column, never per row.
      node('Cast', [t('acc')], [t('accf')], { to: ElemType.FLOAT }),
      node('Cast', [t('racc')], [t('raccf')], { to: ElemType.FLOAT }),
      node('Unsqueeze', [t('xs'), AXIS_1], [t('xs_col')]),
      node('Unsqueeze', [t('rs'), AXIS_1], [t('rs_col')]),
      node('Mul', [t('accf'), t('xs_col')], [t('yx')]),
      node('Mul', [t('raccf'), t('rs_col')], [t('yr')]),
      node('Add', [t('yx'), t('yr')], [t('ysum')]),
      node('Mul', [t('ysum'), ws], [t('yw')]),
      node('Add', [t('yw'), names.b], [y]),
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
