import type { ModelConfigInput } from '../../src/skills/backends/onnx/model-config.js';
import { dense as denseLayer, int8Constants, type LayerPrecision, meanEmbedding, type Part } from './layers.js';
import { ElemType, encodeModel, floatInitializer, node, valueInfo } from './onnx-builder.js';
import { mulberry32, uniform } from './prng.js';

/** A model the project generates: the ONNX files of one version and its config.json. */
export interface GeneratedModel {
  name: string;
  /** `model.onnx`. */
  onnx: Uint8Array;
  /** Further files of the version directory: the variants' models, e.g. `model.int8.onnx`. */
  files?: { file: string; onnx: Uint8Array }[];
  config: ModelConfigInput;
}

/** The variants the project writes of a model that has them, and the file each lives in. */
export const VARIANT_FILES = { fp32: 'model.onnx', fp16: 'model.fp16.onnx', int8: 'model.int8.onnx' } as const;
export type VariantName = keyof typeof VARIANT_FILES;
const PRECISION_OF: Record<VariantName, LayerPrecision> = { fp32: 'FP32', fp16: 'FP16', int8: 'INT8' };

/** The variant a request for the model gets when it names none: chosen from docs/BENCHMARKS.md. */
const MLP_DEFAULT: VariantName = 'fp32';
const EMBEDDER_DEFAULT: VariantName = 'int8';

/** The FP32 file's description stays as it always was; the others say what they are. */
const suffix = (precision: LayerPrecision) => (precision === 'FP32' ? '' : ` (${precision} variant)`);

/**
 * A model's FP32, FP16 and INT8 variants, each built by `build` from the same weights, and
 * the config entries that declare them.
 */
function withVariants(build: (precision: LayerPrecision) => Uint8Array, defaultVariant: VariantName) {
  const names = Object.keys(VARIANT_FILES) as VariantName[];
  return {
    files: {
      onnx: build('FP32'),
      files: names.filter((v) => v !== 'fp32').map((v) => ({ file: VARIANT_FILES[v], onnx: build(PRECISION_OF[v]) })),
    },
    config: {
      variants: Object.fromEntries(names.map((v) => [v, { precision: PRECISION_OF[v], file: VARIANT_FILES[v] }])),
      default_variant: defaultVariant,
    } satisfies Pick<ModelConfigInput, 'variants' | 'default_variant'>,
  };
}

/** Weights uniform in ±sqrt(6 / fanIn) (He-style), so activations neither vanish nor explode through ReLUs. */
function dense(next: () => number, fanIn: number, fanOut: number) {
  const limit = Math.sqrt(6 / fanIn);
  return { w: uniform(next, fanIn * fanOut, limit), b: uniform(next, fanOut, 0.1) };
}

/**
 * `classifier`: 4 features → 3 classes. probabilities = softmax(x·W + b), label = argmax.
 * Small enough to check by hand; its INT64 output exercises a second datatype. Its 15 weights
 * are smaller than any file's framing, so it has no compressed variants.
 */
export function classifier(seed = 1): GeneratedModel {
  const { w, b } = dense(mulberry32(seed), 4, 3);
  const onnx = encodeModel({
    name: 'classifier',
    doc: 'Linear layer and softmax over 3 classes; weights from mulberry32 seed ' + seed,
    inputs: [valueInfo('input', ElemType.FLOAT, ['batch', 4])],
    outputs: [valueInfo('probabilities', ElemType.FLOAT, ['batch', 3]), valueInfo('label', ElemType.INT64, ['batch'])],
    initializers: [floatInitializer('W', [4, 3], w), floatInitializer('B', [3], b)],
    nodes: [
      node('Gemm', ['input', 'W', 'B'], ['logits']),
      node('Softmax', ['logits'], ['probabilities'], { axis: 1 }),
      node('ArgMax', ['logits'], ['label'], { axis: 1, keepdims: 0 }),
    ],
  });
  return {
    name: 'classifier',
    onnx,
    config: {
      max_batch_size: 64,
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [
        { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] },
        { name: 'label', datatype: 'INT64', shape: [-1] },
      ],
      dynamic_batching: { max_queue_delay_ms: 1, preferred_batch_sizes: [16, 64] },
      deterministic: true,
    },
  };
}

/** Size of the embedder's table: token ids 0..8191, 64 values each (2 MB in FP32). */
export const EMBEDDER_VOCAB = 8192;
export const EMBEDDER_WIDTH = 64;

/**
 * `embedder`: token ids (INT64, any length) → the mean of their 64-wide embeddings, in FP32,
 * FP16 and INT8 (one scale per token). Variable length means only requests of equal length
 * stack; an id outside 0..8191 is the caller's error.
 */
export function embedder(seed = 2): GeneratedModel {
  const [vocab, width] = [EMBEDDER_VOCAB, EMBEDDER_WIDTH];
  const table = uniform(mulberry32(seed), vocab * width, 1);
  const build = (precision: LayerPrecision) => {
    const part = meanEmbedding(precision, { ids: 'ids', y: 'embedding', table: 'E' }, table, vocab, width);
    return encodeModel({
      name: 'embedder',
      doc: `Mean of ${width}-wide embeddings of token ids 0..${vocab - 1}${suffix(precision)}; table from mulberry32 seed ${seed}`,
      inputs: [valueInfo('ids', ElemType.INT64, ['batch', 'length'])],
      outputs: [valueInfo('embedding', ElemType.FLOAT, ['batch', width])],
      ...part,
    });
  };
  const variants = withVariants(build, EMBEDDER_DEFAULT);
  return {
    name: 'embedder',
    ...variants.files,
    config: {
      max_batch_size: 32,
      inputs: [{ name: 'ids', datatype: 'INT64', shape: [-1, -1] }],
      outputs: [{ name: 'embedding', datatype: 'FP32', shape: [-1, width] }],
      deterministic: true,
      ...variants.config,
    },
  };
}

/**
 * Layer widths of `mlp`: 256 in, three hidden layers of 4096, 16 out (34.6 M weights, 139 MB).
 * One row costs several ms on one core, mostly reading every weight once; a batch reads them
 * once for all its rows. That is the workload dynamic batching exists for, and it has to
 * outweigh the HTTP and queue path in front of the model: with 2048-wide layers (1-2 ms a row)
 * the path's own CPU per request, on cores it shares with the model, capped the batching gain
 * at about 1.9x (bench:queue).
 */
export const MLP_WIDTHS = [256, 4096, 4096, 4096, 16] as const;

/**
 * Which layers of `mlp` each variant compresses. INT8 leaves the first layer (its input may be
 * negative; 3 % of the weights) and the 16-wide output layer (0.2 %) in FP32, as quantization
 * tools commonly do: the two 4096×4096 layers hold 97 % of the weights.
 */
function mlpLayerPrecision(variant: LayerPrecision, layer: number): LayerPrecision {
  if (variant !== 'INT8') return variant;
  return layer === 0 || layer === MLP_WIDTHS.length - 2 ? 'FP32' : 'INT8';
}

/**
 * `mlp`: Gemm+ReLU ×3 then Gemm, big enough that compute dominates a call: the model of the
 * batching benchmark. Too large to keep in git, it is generated at setup, with its FP16 and
 * INT8 variants.
 */
export function mlp(seed = 3): GeneratedModel {
  const next = mulberry32(seed);
  const weights = MLP_WIDTHS.slice(0, -1).map((k, i) => ({
    k,
    n: MLP_WIDTHS[i + 1]!,
    ...dense(next, k, MLP_WIDTHS[i + 1]!),
  }));
  const out = MLP_WIDTHS[MLP_WIDTHS.length - 1]!;
  const build = (precision: LayerPrecision) => {
    const graph: Part = { nodes: [], initializers: precision === 'INT8' ? int8Constants() : [] };
    let x = 'input';
    weights.forEach(({ k, n, w, b }, i) => {
      const last = i === weights.length - 1;
      const y = last ? 'logits' : `h${i}`;
      const part = denseLayer(
        mlpLayerPrecision(precision, i),
        { x, y: last ? y : `${y}_pre`, w: `W${i}`, b: `B${i}` },
        w,
        b,
        k,
        n,
      );
      graph.nodes.push(...part.nodes);
      graph.initializers.push(...part.initializers);
      if (!last) graph.nodes.push(node('Relu', [`${y}_pre`], [y]));
      x = y;
    });
    return encodeModel({
      name: 'mlp',
      doc: `MLP ${MLP_WIDTHS.join('-')} with ReLU${suffix(precision)}; weights from mulberry32 seed ${seed}`,
      inputs: [valueInfo('input', ElemType.FLOAT, ['batch', MLP_WIDTHS[0]])],
      outputs: [valueInfo('logits', ElemType.FLOAT, ['batch', out])],
      ...graph,
    });
  };
  const variants = withVariants(build, MLP_DEFAULT);
  return {
    name: 'mlp',
    ...variants.files,
    config: {
      max_batch_size: 32,
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, MLP_WIDTHS[0]] }],
      outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, out] }],
      dynamic_batching: { max_queue_delay_ms: 2, preferred_batch_sizes: [8, 16, 32] },
      deterministic: true,
      ...variants.config,
    },
  };
}

/** Every model `npm run models` writes, as version 1. */
export const generatedModels = [classifier, embedder, mlp] as const;
