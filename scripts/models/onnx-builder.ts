import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** ONNX element types we write (TensorProto.DataType). */
export const ElemType = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9, DOUBLE: 11 } as const;

/** A dimension: a fixed size, or a name for a size chosen at run time (e.g. "batch"). */
export type Dim = number | string;

const protoPath = fileURLToPath(new URL('./onnx.proto', import.meta.url));
let root: protobuf.Root | undefined;

/** onnx.ModelProto from the vendored subset, for encoding and (in tests) decoding model files. */
export function modelProtoType(): protobuf.Type {
  root ??= protobuf.loadSync(protoPath);
  return root.lookupType('onnx.ModelProto');
}

/** A float32 weight, stored as little-endian raw bytes like every ONNX exporter does. */
export function floatInitializer(name: string, dims: number[], values: Float32Array) {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return { name, dims, dataType: ElemType.FLOAT, rawData: bytes };
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
  initializers: ReturnType<typeof floatInitializer>[];
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
