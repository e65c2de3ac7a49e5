/**
 * Weight compression for the generated models' variants: float32 → float16 (round to nearest
 * even, as numpy's astype and onnxruntime's converters do) and float32 → int8 with one
 * symmetric scale per output column (per-channel quantization).
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 binary16 bits of one float32, rounded to nearest even; overflow becomes ±Infinity. */
export function toFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf, NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: ±0
    const m = mant | 0x800000; // the implicit leading 1
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let h = m >>> shift;
    if (rest > half || (rest === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++; // may carry into the exponent: still right
  return sign | h;
}

/** The float value of binary16 bits (for tests and agreement checks). */
export function fromFloat16Bits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Every value as binary16 bits. */
export function toFloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toFloat16Bits(values[i]!);
  return out;
}

/** An int8 matrix and the scale of each of its columns: w[r][c] ≈ q[r][c] × scale[c]. */
export interface QuantizedMatrix {
  q: Int8Array;
  scale: Float32Array;
}

/**
 * Symmetric per-column int8 quantization of a row-major `rows × cols` matrix (a MatMul weight
 * [K, N]: one scale per output channel). `bits` below 8 narrows the range, e.g. 7 → [-63, 63].
 */
export function quantizeColumns(w: Float32Array, rows: number, cols: number, bits = 8): QuantizedMatrix {
  const qmax = 2 ** (bits - 1) - 1;
  const absMax = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) {
      const a = Math.abs(w[base + c]!);
      if (a > absMax[c]!) absMax[c] = a;
    }
  }
  const scale = absMax.map((m) => (m > 0 ? m / qmax : 1));
  const inverse = new Float64Array(cols).map((_, c) => 1 / scale[c]!);
  const q = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) {
      // |w| ≤ max|w| keeps this within ±qmax, give or take rounding: the clamp is for that.
      const v = Math.round(w[base + c]! * inverse[c]!);
      q[base + c] = v > qmax ? qmax : v < -qmax ? -qmax : v;
    }
  }
  return { q, scale };
}
