import type { Tensor } from 'onnxruntime-node';
import type { ErrorBody } from '../../../errors/index.js';
import type { WireTensor } from '../../proto.js';
import {
  elementCount,
  formatShape,
  makeTensor,
  tensorValues,
  dataFieldName,
  type TensorDatatype,
} from '../../tensors.js';
import type { ModelConfig } from './model-config.js';
import { loadOrt, ORT_TYPE } from './session.js';

type TypedData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

/** One item's inputs, checked against the model's config and converted to typed arrays. */
export interface PreparedItem {
  /** Rows along the batch dimension (1 for a model without batching). */
  rows: number;
  inputs: Map<string, { data: TypedData; dims: number[] }>;
  /** Items with the same key can be stacked: equal dimensions apart from the batch. */
  stackKey: string;
}

type Prepared = { ok: true; item: PreparedItem } | { ok: false; error: ErrorBody };

function bad(model: string, message: string, input?: string): Prepared {
  return { ok: false, error: { code: 'BAD_REQUEST', message, details: { model, ...(input ? { input } : {}) } } };
}

function toTyped(datatype: TensorDatatype, values: readonly (number | boolean)[]): TypedData | string {
  switch (datatype) {
    case 'FP32':
      return Float32Array.from(values as number[]);
    case 'FP64':
      return Float64Array.from(values as number[]);
    case 'INT32':
    case 'INT64': {
      const bad = values.findIndex((v) => !Number.isSafeInteger(v));
      if (bad >= 0) return `value ${bad} (${String(values[bad])}) is not an integer`;
      return datatype === 'INT32'
        ? Int32Array.from(values as number[])
        : BigInt64Array.from(values as number[], (v) => BigInt(v));
    }
    case 'BOOL':
      return Uint8Array.from(values as boolean[], (v) => (v ? 1 : 0));
  }
}

/**
 * Checks an item's tensors against the model: every input present once, none unknown, the right
 * datatype, a shape that fits (the batch dimension within max_batch_size) and as many values as
 * the shape needs. A problem is a BAD_REQUEST whose message names the input.
 */
export function prepareItem(model: string, config: ModelConfig, tensors: readonly WireTensor[] | undefined): Prepared {
  // Only error messages use it: built when one is.
  const expected = () => config.inputs.map((s) => `${s.name} (${s.datatype} ${formatShape(s.shape)})`).join(', ');
  if (!tensors || tensors.length === 0) return bad(model, `model "${model}" takes tensor inputs: ${expected()}`);
  const batching = config.max_batch_size > 0;
  const given = new Map<string, WireTensor>();
  for (const t of tensors) {
    const spec = config.inputs.find((s) => s.name === t.name);
    if (!spec) return bad(model, `unknown input "${t.name}" for model "${model}"; it takes ${expected()}`, t.name);
    if (given.has(t.name)) return bad(model, `input "${t.name}" is given twice`, t.name);
    given.set(t.name, t);
  }
  const inputs: PreparedItem['inputs'] = new Map();
  let rows: number | undefined;
  let rowsFrom = '';
  const keys: string[] = [];
  for (const spec of config.inputs) {
    const t = given.get(spec.name);
    if (!t) return bad(model, `missing input "${spec.name}" (${spec.datatype} ${formatShape(spec.shape)})`, spec.name);
    if (t.datatype !== spec.datatype) {
      return bad(
        model,
        `input "${spec.name}": datatype ${t.datatype || '(none)'}, expected ${spec.datatype}`,
        spec.name,
      );
    }
    const shape = t.shape.map(Number);
    const fits =
      shape.length === spec.shape.length &&
      shape.every((d, i) => d >= 1 && (spec.shape[i] === -1 || spec.shape[i] === d));
    if (!fits) {
      return bad(
        model,
        `input "${spec.name}": shape ${formatShape(shape)} does not fit ${formatShape(spec.shape)}`,
        spec.name,
      );
    }
    if (batching) {
      const n = shape[0]!;
      if (n > config.max_batch_size) {
        return bad(
          model,
          `input "${spec.name}": batch of ${n} is over max_batch_size ${config.max_batch_size}`,
          spec.name,
        );
      }
      if (rows !== undefined && n !== rows) {
        return bad(
          model,
          `input "${spec.name}": batch dimension ${n} differs from ${rows} of input "${rowsFrom}"`,
          spec.name,
        );
      }
      rows = n;
      rowsFrom = spec.name;
    }
    const values = tensorValues(t);
    const needed = elementCount(shape);
    if (values.length !== needed) {
      return bad(
        model,
        `input "${spec.name}": shape ${formatShape(shape)} needs ${needed} values in ${dataFieldName(spec.datatype)}, got ${values.length}`,
        spec.name,
      );
    }
    const data = toTyped(spec.datatype, values);
    if (typeof data === 'string') return bad(model, `input "${spec.name}": ${data}`, spec.name);
    inputs.set(spec.name, { data, dims: shape });
    keys.push(formatShape(batching ? shape.slice(1) : shape));
  }
  return { ok: true, item: { rows: rows ?? 1, inputs, stackKey: keys.join(';') } };
}

/** Splits items into runs of at most `maxRows` rows (one item per run when the model does not batch). */
export function chunk<T>(items: readonly T[], maxRows: number, rowsOf: (item: T) => number): T[][] {
  if (maxRows <= 0) return items.map((i) => [i]);
  const runs: T[][] = [];
  let current: T[] = [];
  let rows = 0;
  for (const item of items) {
    const n = rowsOf(item);
    if (current.length > 0 && rows + n > maxRows) {
      runs.push(current);
      current = [];
      rows = 0;
    }
    current.push(item);
    rows += n;
  }
  if (current.length > 0) runs.push(current);
  return runs;
}

/** The model's feeds for `items` stacked along the batch dimension (or one item's, unchanged). */
export async function stackFeeds(config: ModelConfig, items: readonly PreparedItem[]): Promise<Record<string, Tensor>> {
  const ort = await loadOrt();
  const feeds: Record<string, Tensor> = {};
  for (const spec of config.inputs) {
    const parts = items.map((i) => i.inputs.get(spec.name)!);
    const first = parts[0]!;
    if (parts.length === 1) {
      feeds[spec.name] = new ort.Tensor(ORT_TYPE[spec.datatype], first.data, first.dims);
      continue;
    }
    const total = parts.reduce((n, p) => n + p.data.length, 0);
    const data = new (first.data.constructor as new (n: number) => TypedData)(total);
    let offset = 0;
    for (const p of parts) {
      (data as Float32Array).set(p.data as Float32Array, offset);
      offset += p.data.length;
    }
    const rows = items.reduce((n, i) => n + i.rows, 0);
    feeds[spec.name] = new ort.Tensor(ORT_TYPE[spec.datatype], data, [rows, ...first.dims.slice(1)]);
  }
  return feeds;
}

function toValues(datatype: TensorDatatype, data: Tensor['data']): (number | boolean)[] {
  if (datatype === 'BOOL') return Array.from(data as Uint8Array, (v) => v !== 0);
  if (datatype === 'INT64') return Array.from(data as BigInt64Array, (v) => Number(v));
  return Array.from(data as Float32Array);
}

/** Each item's share of the outputs: rows [offset, offset + rows) of every batched output. */
export function splitOutputs(
  config: ModelConfig,
  results: Record<string, Tensor>,
  items: readonly PreparedItem[],
): WireTensor[][] {
  const batching = config.max_batch_size > 0;
  const perItem: WireTensor[][] = items.map(() => []);
  for (const spec of config.outputs) {
    const out = results[spec.name];
    if (!out) throw new Error(`the model returned no output "${spec.name}"`);
    const dims = out.dims.map(Number);
    if (!batching) {
      perItem[0]!.push(makeTensor(spec.name, spec.datatype, dims, toValues(spec.datatype, out.data)));
      continue;
    }
    const inner = elementCount(dims.slice(1));
    let row = 0;
    items.forEach((item, i) => {
      const data = (out.data as Float32Array).subarray(row * inner, (row + item.rows) * inner);
      perItem[i]!.push(
        makeTensor(spec.name, spec.datatype, [item.rows, ...dims.slice(1)], toValues(spec.datatype, data)),
      );
      row += item.rows;
    });
  }
  return perItem;
}
