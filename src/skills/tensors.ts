import type { WireTensor } from './proto.js';

/** Tensor element types skills accept, in the Open Inference Protocol's names. */
export const TENSOR_DATATYPES = ['BOOL', 'INT32', 'INT64', 'FP32', 'FP64'] as const;
export type TensorDatatype = (typeof TENSOR_DATATYPES)[number];

/** Which repeated field of the proto Tensor carries each datatype's values. */
const DATA_FIELD = {
  BOOL: 'boolData',
  INT32: 'int32Data',
  INT64: 'int64Data',
  FP32: 'fp32Data',
  FP64: 'fp64Data',
} as const satisfies Record<TensorDatatype, keyof WireTensor>;

export function isTensorDatatype(value: string): value is TensorDatatype {
  return (TENSOR_DATATYPES as readonly string[]).includes(value);
}

/** The proto field name (snake_case, as users of the contract read it) that holds `datatype`'s values. */
export function dataFieldName(datatype: TensorDatatype): string {
  return DATA_FIELD[datatype].replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** The values of a wire tensor, read from the field its datatype names (empty when absent). */
export function tensorValues(t: WireTensor): readonly (number | boolean)[] {
  if (!isTensorDatatype(t.datatype)) return [];
  return t[DATA_FIELD[t.datatype]] ?? [];
}

/** A wire tensor with its values in the field its datatype names. */
export function makeTensor(
  name: string,
  datatype: TensorDatatype,
  shape: readonly number[],
  values: readonly (number | boolean)[],
): WireTensor {
  return { name, datatype, shape: [...shape], [DATA_FIELD[datatype]]: values } as WireTensor;
}

/** Number of elements of a tensor of this shape (1 for a scalar). */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** `[-1,4]`: how shapes appear in error messages. */
export function formatShape(shape: readonly (number | string)[]): string {
  return `[${shape.join(',')}]`;
}
