import { type FileHandle, open } from 'node:fs/promises';

/** Precisions a model variant may declare, named after the type that holds most of its weights. */
export const PRECISIONS = ['FP32', 'FP16', 'INT8'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** ONNX TensorProto.DataType → the precision it stores weights in (other types are not weights). */
const WEIGHT_TYPES: Record<number, Precision> = { 1: 'FP32', 10: 'FP16', 2: 'INT8', 3: 'INT8' };

/** What a model file stores its weights in: element counts per precision, and the one that dominates. */
export interface WeightSummary {
  /** Weight values per precision (initializers and Constant nodes). */
  counts: Partial<Record<Precision, number>>;
  /** The precision holding the most values; undefined for a model without weights. */
  precision?: Precision;
}

/**
 * Reads a file's protobuf positionally: onnxruntime loads the weights itself, and reading a
 * 139 MB file into memory only to learn its tensors' types would double the replica's peak.
 * Only tags, lengths and the small fields are read; raw_data is skipped by seeking.
 */
class FileReader {
  private buf = Buffer.alloc(64 * 1024);
  private start = 0; // file offset of buf[0]
  private end = 0; // file offset just past the valid bytes in buf
  pos = 0;

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
  ) {}

  /** Makes bytes [pos, pos + n) readable from buf (n ≤ 10: a varint at most). */
  private async fill(n: number): Promise<void> {
    if (this.pos >= this.start && this.pos + n <= this.end) return;
    const { bytesRead } = await this.fh.read(this.buf, 0, this.buf.length, this.pos);
    this.start = this.pos;
    this.end = this.pos + bytesRead;
    if (this.pos + n > this.end) throw new Error(`truncated at byte ${this.pos}`);
  }

  async varint(): Promise<number> {
    await this.fill(Math.min(10, this.size - this.pos));
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error(`truncated varint at byte ${this.pos}`);
      const b = this.buf[this.pos - this.start]!;
      this.pos++;
      // Lengths and counts fit in 2^53; higher bits only occur in negative int64 values we skip.
      if (shift < 53) result += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (b < 0x80) return result;
    }
    throw new Error(`malformed varint at byte ${this.pos}`);
  }

  skip(n: number): void {
    if (this.pos + n > this.size) throw new Error(`a field runs past the end of the file at byte ${this.pos}`);
    this.pos += n;
  }

  async skipField(wireType: number): Promise<void> {
    if (wireType === 0) await this.varint();
    else if (wireType === 1) this.skip(8);
    else if (wireType === 2) this.skip(await this.varint());
    else if (wireType === 5) this.skip(4);
    else throw new Error(`unsupported protobuf wire type ${wireType} at byte ${this.pos}`);
  }

  /** Calls `field` for each field up to `end`; it returns false to have the field skipped. */
  async fields(end: number, field: (no: number, wireType: number) => Promise<boolean>): Promise<void> {
    while (this.pos < end) {
      const tag = await this.varint();
      const wireType = tag & 7;
      if (!(await field(tag >>> 3, wireType))) await this.skipField(wireType);
    }
    if (this.pos !== end) throw new Error(`a message overruns its length at byte ${this.pos}`);
  }
}

/** TensorProto: dims (1), data_type (2); the rest is skipped. */
async function readTensor(r: FileReader, end: number): Promise<{ type: number; count: number }> {
  let type = 0;
  let count = 1;
  await r.fields(end, async (no, wt) => {
    if (no === 1 && wt === 0) count *= await r.varint();
    else if (no === 1 && wt === 2) {
      const n = await r.varint();
      const stop = r.pos + n;
      while (r.pos < stop) count *= await r.varint();
    } else if (no === 2 && wt === 0) type = await r.varint();
    else return false;
    return true;
  });
  return { type, count };
}

/**
 * Counts a model's weights by precision: graph initializers and the tensors of Constant nodes
 * (ModelProto.graph = 7, GraphProto.node = 1 / initializer = 5, NodeProto.attribute = 5,
 * AttributeProto.t = 5). Throws a message saying where the file is not an ONNX model.
 */
export async function summarizeWeights(file: string): Promise<WeightSummary> {
  const fh = await open(file, 'r');
  try {
    const r = new FileReader(fh, (await fh.stat()).size);
    const counts: WeightSummary['counts'] = {};
    const add = (t: { type: number; count: number }) => {
      const p = WEIGHT_TYPES[t.type];
      if (p) counts[p] = (counts[p] ?? 0) + t.count;
    };
    const length = async () => {
      const n = await r.varint();
      return r.pos + n;
    };
    let graphs = 0;
    await r.fields(r.size, async (no, wt) => {
      if (no !== 7 || wt !== 2) return false;
      graphs++;
      await r.fields(await length(), async (gno, gwt) => {
        if (gno === 5 && gwt === 2) add(await readTensor(r, await length()));
        else if (gno === 1 && gwt === 2) {
          await r.fields(await length(), async (nno, nwt) => {
            if (nno !== 5 || nwt !== 2) return false;
            await r.fields(await length(), async (ano, awt) => {
              if (ano !== 5 || awt !== 2) return false;
              add(await readTensor(r, await length()));
              return true;
            });
            return true;
          });
        } else return false;
        return true;
      });
      return true;
    });
    if (graphs === 0) throw new Error('no graph in the file');
    const ranked = (Object.entries(counts) as [Precision, number][]).sort((a, b) => b[1] - a[1]);
    return { counts, ...(ranked[0] ? { precision: ranked[0][0] } : {}) };
  } finally {
    await fh.close();
  }
}
