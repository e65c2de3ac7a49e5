import type * as OrtModule from 'onnxruntime-node';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { formatShape, type TensorDatatype } from '../../tensors.js';
import type { ModelConfig } from './model-config.js';

type Ort = typeof OrtModule;

/** onnxruntime's tensor type for each datatype we accept. */
export const ORT_TYPE = {
  BOOL: 'bool',
  INT32: 'int32',
  INT64: 'int64',
  FP32: 'float32',
  FP64: 'float64',
} as const satisfies Record<TensorDatatype, Tensor.Type>;

let ortModule: Promise<Ort> | undefined;

/** onnxruntime-node, imported on first use: its native library is not loaded by processes that never run a model. */
export function loadOrt(): Promise<Ort> {
  ortModule ??= import('onnxruntime-node').then((m) => ((m as unknown as { default?: Ort }).default ?? m) as Ort);
  return ortModule;
}

export interface SessionSettings {
  /** Threads onnxruntime uses inside one operator; 0 lets it choose (one per core). */
  intraOpThreads: number;
}

/**
 * Opens `file` on the CPU execution provider. `purpose: 'check'` skips the graph optimizations:
 * the file is still parsed and every operator given its kernel, but folding constants and
 * prepacking weights (a second or more for the mlp's FP16 file, whose casts are folded) is work
 * a session opened only to be compared with its config and released throws away.
 */
export async function openSession(
  file: string,
  settings: SessionSettings,
  purpose: 'serve' | 'check' = 'serve',
): Promise<InferenceSession> {
  const ort = await loadOrt();
  return ort.InferenceSession.create(file, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: purpose === 'check' ? 'disabled' : 'all',
    // onnxruntime prints failed runs to stderr itself; we report them per item instead.
    logSeverityLevel: 4,
    // Idle intra-op threads would otherwise spin for a while after each run, taking cores from
    // the gateways, dispatchers and gRPC threads that share the machine with the skill.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
    ...(settings.intraOpThreads > 0 ? { intraOpNumThreads: settings.intraOpThreads } : {}),
  });
}

/**
 * Where the model's own signature and its config.json disagree: every config input must be a
 * model input and the other way round, every config output a model output, with the same
 * element type and a compatible shape (-1 in the config needs a free dimension in the model).
 */
export function signatureProblems(session: InferenceSession, config: ModelConfig): string[] {
  const problems: string[] = [];
  const compare = (kind: 'input' | 'output', spec: ModelConfig['inputs'][number], meta: unknown) => {
    const m = meta as { isTensor?: boolean; type?: string; shape?: readonly (number | string)[] } | undefined;
    if (!m) {
      problems.push(`config ${kind} "${spec.name}" is not a ${kind} of the model`);
      return;
    }
    if (m.isTensor === false) {
      problems.push(`model ${kind} "${spec.name}" is not a tensor`);
      return;
    }
    if (m.type !== undefined && m.type !== ORT_TYPE[spec.datatype]) {
      problems.push(`${kind} "${spec.name}": the model has ${m.type}, config.json says ${spec.datatype}`);
    }
    const shape = m.shape ?? [];
    if (shape.length === 0) return; // the model leaves the shape open
    const fits =
      shape.length === spec.shape.length &&
      spec.shape.every((d, i) => {
        const md = shape[i];
        if (typeof md === 'string' || md === -1) return true;
        return d === md;
      });
    if (!fits) {
      problems.push(
        `${kind} "${spec.name}": the model has shape ${formatShape(shape)}, config.json says ${formatShape(spec.shape)}`,
      );
    }
  };
  const inputs = new Map(session.inputMetadata.map((m) => [m.name, m]));
  const outputs = new Map(session.outputMetadata.map((m) => [m.name, m]));
  for (const spec of config.inputs) compare('input', spec, inputs.get(spec.name));
  for (const spec of config.outputs) compare('output', spec, outputs.get(spec.name));
  for (const name of inputs.keys()) {
    if (!config.inputs.some((s) => s.name === name)) problems.push(`model input "${name}" is missing from config.json`);
  }
  return problems;
}
