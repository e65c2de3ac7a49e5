import { z } from 'zod';
import { AppError } from '../errors/index.js';
import type { WireTensor } from '../skills/proto.js';
import {
  elementCount,
  formatShape,
  makeTensor,
  TENSOR_DATATYPES,
  type TensorDatatype,
  tensorValues,
} from '../skills/tensors.js';

/** A tensor as the Open Inference Protocol (KServe v2) writes it in JSON. */
export const httpTensorSchema = z.strictObject({
  name: z.string().min(1).max(256),
  datatype: z.enum(TENSOR_DATATYPES),
  shape: z
    .array(
      z
        .number()
        .int()
        .min(0)
        .max(2 ** 31),
    )
    .max(8),
  /** Row-major values, flat or nested. */
  data: z.array(z.unknown()),
  /** Accepted for compatibility with OIP clients, not used. */
  parameters: z.record(z.string(), z.unknown()).optional(),
});

export type HttpTensor = z.infer<typeof httpTensorSchema>;

const MAX_DEPTH = 8;

function flatten(data: unknown[], out: unknown[], depth: number): boolean {
  for (const v of data) {
    if (Array.isArray(v)) {
      if (depth >= MAX_DEPTH || !flatten(v, out, depth + 1)) return false;
    } else out.push(v);
  }
  return true;
}

function valueProblem(datatype: TensorDatatype, v: unknown): string | undefined {
  switch (datatype) {
    // Non-finite values (JSON's 1e999 parses as Infinity) and FP32 values beyond its range (which
    // would become Infinity on the way to the model) are refused, not computed with.
    case 'FP32':
      if (typeof v !== 'number') return 'a number';
      return Number.isFinite(Math.fround(v)) ? undefined : "a finite number within FP32's range";
    case 'FP64':
      if (typeof v !== 'number') return 'a number';
      return Number.isFinite(v) ? undefined : 'a finite number';
    case 'INT32':
      return Number.isInteger(v) && Math.abs(v as number) <= 2 ** 31 ? undefined : 'a 32-bit integer';
    case 'INT64':
      return Number.isSafeInteger(v) ? undefined : 'an integer (within ±2^53)';
    case 'BOOL':
      return typeof v === 'boolean' ? undefined : 'true or false';
  }
}

/**
 * Checks each tensor's values against its datatype and shape and converts it for the wire.
 * A problem is a BAD_REQUEST naming the input: `input "x": shape [2,4] needs 8 values, got 7`.
 */
export function toWireTensors(inputs: readonly HttpTensor[]): WireTensor[] {
  return inputs.map((t, i) => {
    const fail = (problem: string) => {
      throw new AppError('BAD_REQUEST', `input "${t.name}": ${problem}`, { field: `inputs.${i}`, input: t.name });
    };
    const values: unknown[] = [];
    if (!flatten(t.data, values, 1)) fail(`data is nested deeper than ${MAX_DEPTH} levels`);
    const needed = elementCount(t.shape);
    if (values.length !== needed) fail(`shape ${formatShape(t.shape)} needs ${needed} values, got ${values.length}`);
    values.forEach((v, j) => {
      const expected = valueProblem(t.datatype, v);
      if (expected) {
        throw new AppError(
          'BAD_REQUEST',
          `input "${t.name}": data[${j}] is ${describeValue(v)}, expected ${expected} for ${t.datatype}`,
          { field: `inputs.${i}.data`, input: t.name, index: j },
        );
      }
    });
    return makeTensor(t.name, t.datatype, t.shape, values as (number | boolean)[]);
  });
}

/** A value as a message shows it: JSON would print Infinity as null. */
function describeValue(v: unknown): string {
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return JSON.stringify(v)?.slice(0, 20) ?? String(v);
}

/** A tensor from a skill, as OIP JSON: `{name, datatype, shape, data}` with flat data. */
export function fromWireTensor(t: WireTensor): { name: string; datatype: string; shape: number[]; data: unknown[] } {
  return { name: t.name, datatype: t.datatype, shape: t.shape.map(Number), data: [...tensorValues(t)] };
}
