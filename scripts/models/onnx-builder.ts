import { endianness } from 'node:os';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** ONNX element types we write (TensorProto.DataType). */
export const ElemType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11 } as const;

/** A dimension: a fixed size, or a name for a size chosen at run time (e.g. "batch"). */
export type Dim = number | string;

const protoPath = fileURLToPath(new URL('./onnx.proto', import.meta.url));
let root: protobuf.Root | undefined;

/** onnx.ModelProto from the vendored subset, for encoding and (in tests) decoding model files. */
export function modelProtoType(): protobuf.Type {
  root ??= protobuf.loadSync(protoPath);
  return root.lookupType('onnx.ModelProto');
}

/** A weight or constant: its type and its values as raw bytes. */
export interface Initializer {
  name: string;
  dims: number[];
  dataType: number;
  rawData: Uint8Array;
}

/** The array's bytes in little-endian order, the order ONNX's raw_data is stored in. */
function littleEndian(values: Float32Array | Uint16Array | BigInt64Array): Uint8Array {
  const bytes = new Uint8Array(values.byteLength);
  if (endianness() === 'LE') {
    bytes.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    return bytes;
  }
  const view = new DataView(bytes.buffer);
  values.forEach((v: number | bigint, i: number) => {
    if (values instanceof Float32Array) view.setFloat32(i * 4, v as number, true);
    else if (values instanceof Uint16Array) view.setUint16(i * 2, v as number, true);
    else view.setBigInt64(i * 8, v as bigint, true);
  });
  return bytes;
}

/** A float32 weight, stored as little-endian raw bytes like every ONNX exporter does. */
export function floatInitializer(name: string, dims: number[], values: Float32Array): Initializer {
  return { name, dims, dataType: ElemType.FLOAT, rawData: littleEndian(values) };
}

/** A float16 weight from its binary16 bits (quantize.ts converts). */
export function float16Initializer(name: string, dims: number[], bits: Uint16Array): Initializer {
  return { name, dims, dataType: ElemType.FLOAT16, rawData: littleEndian(bits) };
}

/** An int8 weight: one byte each. */
export function int8Initializer(name: string, dims: number[], values: Int8Array): Initializer {
  return {
    name,
    dims,
    dataType: ElemType.INT8,
    rawData: new Uint8Array(values.buffer, values.byteOffset, values.length),
  };
}

/** A uint8 constant, e.g. a zero point. */
export function uint8Initializer(name: string, dims: number[], values: Uint8Array): Initializer {
  return { name, dims, dataType: ElemType.UINT8, rawData: values };
}

/** An int64 constant, e.g. the axes of an Unsqueeze. */
export function int64Initializer(name: string, dims: number[], values: readonly number[]): Initializer {
  return { name, dims, dataType: ElemType.INT64, rawData: littleEndian(BigInt64Array.from(values, BigInt)) };
}

/** A graph input or output: its element type and shape. */
export function valueInfo(name: string, elemType: number, dims: Dim[]) {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** One operator. Attributes are integers or lists of integers: all that our graphs need. */
export function node(opType: string, input: string[], output: string[], attrs: Record<string, number | number[]> = {}) {
  return {
    opType,
    name: `${opType.toLowerCase()}_${output[0]}`,
    input,
    output,
    attribute: Object.entries(attrs).map(([name, v]) =>
      Array.isArray(v) ? { name, type: 7, ints: v } : { name, type: 2, i: v },
    ),
  };
}

export interface GraphSpec {
  name: string;
  doc: string;
  nodes: ReturnType<typeof node>[];
  initializers: Initializer[];
  inputs: ReturnType<typeof valueInfo>[];
  outputs: ReturnType<typeof valueInfo>[];
}

/** IR version 8 and opset 17: read by every onnxruntime from 1.13 on. */
const IR_VERSION = 8;
const OPSET = 17;

/** Serialises a one-graph model. Same spec, same bytes: protobufjs writes fields in id order. */
export function encodeModel(spec: GraphSpec): Uint8Array {
  const type = modelProtoType();
  const message = type.fromObject({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'skillserve-generate-models',
    producerVersion: '1',
    docString: spec.doc,
    graph: {
      name: spec.name,
      node: spec.nodes,
      initializer: spec.initializers,
      input: spec.inputs,
      output: spec.outputs,
    },
  });
  return type.encode(message).finish();
}
