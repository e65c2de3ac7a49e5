import type { ModelConfigInput } from '../../src/skills/backends/onnx/model-config.js';
import { ElemType, encodeModel, floatInitializer, node, valueInfo } from './onnx-builder.js';
import { mulberry32, uniform } from './prng.js';

/** A model the project generates: the ONNX file of one version and its config.json. */
export interface GeneratedModel {
  name: string;
  onnx: Uint8Array;
  config: ModelConfigInput;
}

/** Weights uniform in ±sqrt(6 / fanIn) (He-style), so activations neither vanish nor explode through ReLUs. */
function dense(next: () => number, fanIn: number, fanOut: number) {
  const limit = Math.sqrt(6 / fanIn);
  return { w: uniform(next, fanIn * fanOut, limit), b: uniform(next, fanOut, 0.1) };
}

/**
 * `classifier`: 4 features → 3 classes. probabilities = softmax(x·W + b), label = argmax.
 * Small enough to check by hand; its INT64 output exercises a second datatype.
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

/**
 * `embedder`: token ids (INT64, any length) → the mean of their 8-wide embeddings. Variable
 * length means only requests of equal length stack; an id outside 0..31 is the caller's error.
 */
export function embedder(seed = 2): GeneratedModel {
  const vocab = 32;
  const width = 8;
  const table = uniform(mulberry32(seed), vocab * width, 1);
  const onnx = encodeModel({
    name: 'embedder',
    doc: `Mean of ${width}-wide embeddings of token ids 0..${vocab - 1}; table from mulberry32 seed ${seed}`,
    inputs: [valueInfo('ids', ElemType.INT64, ['batch', 'length'])],
    outputs: [valueInfo('embedding', ElemType.FLOAT, ['batch', width])],
    initializers: [floatInitializer('E', [vocab, width], table)],
    nodes: [
      node('Gather', ['E', 'ids'], ['vectors'], { axis: 0 }),
      node('ReduceMean', ['vectors'], ['embedding'], { axes: [1], keepdims: 0 }),
    ],
  });
  return {
    name: 'embedder',
    onnx,
    config: {
      max_batch_size: 32,
      inputs: [{ name: 'ids', datatype: 'INT64', shape: [-1, -1] }],
      outputs: [{ name: 'embedding', datatype: 'FP32', shape: [-1, width] }],
      deterministic: true,
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
 * `mlp`: Gemm+ReLU ×3 then Gemm, big enough that compute dominates a call: the model of the
 * batching benchmark. Too large to keep in git, it is generated at setup.
 */
export function mlp(seed = 3): GeneratedModel {
  const next = mulberry32(seed);
  const nodes = [];
  const initializers = [];
  let x = 'input';
  for (let i = 0; i < MLP_WIDTHS.length - 1; i++) {
    const { w, b } = dense(next, MLP_WIDTHS[i]!, MLP_WIDTHS[i + 1]!);
    initializers.push(floatInitializer(`W${i}`, [MLP_WIDTHS[i]!, MLP_WIDTHS[i + 1]!], w));
    initializers.push(floatInitializer(`B${i}`, [MLP_WIDTHS[i + 1]!], b));
    const last = i === MLP_WIDTHS.length - 2;
    const y = last ? 'logits' : `h${i}`;
    nodes.push(node('Gemm', [x, `W${i}`, `B${i}`], [last ? y : `${y}_pre`]));
    if (!last) nodes.push(node('Relu', [`${y}_pre`], [y]));
    x = y;
  }
  const out = MLP_WIDTHS[MLP_WIDTHS.length - 1]!;
  const onnx = encodeModel({
    name: 'mlp',
    doc: `MLP ${MLP_WIDTHS.join('-')} with ReLU; weights from mulberry32 seed ${seed}`,
    inputs: [valueInfo('input', ElemType.FLOAT, ['batch', MLP_WIDTHS[0]])],
    outputs: [valueInfo('logits', ElemType.FLOAT, ['batch', out])],
    initializers,
    nodes,
  });
  return {
    name: 'mlp',
    onnx,
    config: {
      max_batch_size: 32,
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, MLP_WIDTHS[0]] }],
      outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, out] }],
      dynamic_batching: { max_queue_delay_ms: 2, preferred_batch_sizes: [8, 16, 32] },
      deterministic: true,
    },
  };
}

/** Every model `npm run models` writes, as version 1. */
export const generatedModels = [classifier, embedder, mlp] as const;
