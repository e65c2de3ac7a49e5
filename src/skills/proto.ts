import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** Absolute path of the skill contract; the same relative depth from src/ and dist/. */
export const skillProtoPath = fileURLToPath(new URL('../../proto/skill.proto', import.meta.url));

export interface WireTensor {
  name: string;
  datatype: string;
  shape: number[];
  fp32Data?: number[];
  fp64Data?: number[];
  int64Data?: number[];
  int32Data?: number[];
  boolData?: boolean[];
  bytesData?: Buffer[];
}

export interface WireParameters {
  task: string;
  maxTokens: number;
  temperature?: number;
  modelVersion: string;
}

export interface WireInferRequest {
  id: string;
  text?: string;
  tensors?: { tensors: WireTensor[] };
  input?: 'text' | 'tensors';
  parameters?: WireParameters;
}

export interface WireTiming {
  computeUs: number;
  totalUs: number;
  batchSize: number;
}

export interface WireError {
  code: string;
  message: string;
  /** Safe-to-show facts about the failure as a JSON object, e.g. {"retryAfterS": 2}. */
  detailsJson?: string;
}

export interface WireInferResponse {
  id: string;
  text?: string;
  json?: string;
  tensors?: { tensors: WireTensor[] };
  output?: 'text' | 'json' | 'tensors';
  error?: WireError | null;
  timing?: WireTiming | null;
  model: string;
}

/** One message of InferStream: a text delta, or (last) the whole result. */
export interface WireStreamChunk {
  delta?: string;
  final?: WireInferResponse | null;
}

export interface WireInferBatchResponse {
  items: WireInferResponse[];
  timing?: WireTiming | null;
}

export interface WireSkillMetrics {
  skill: string;
  backend: string;
  model: string;
  tasks: string[];
  modelState: string;
  requestsTotal: number;
  itemsTotal: number;
  errorsTotal: number;
  inFlight: number;
  uptimeS: number;
  rssBytes: number;
  deterministic: boolean;
  models: { name: string; version: string; state: string }[];
}

// camelCase fields, 64-bit ints as JS numbers (our counters and shapes stay far below 2^53),
// and `output`/`input` naming which member of a oneof is set.
const loaderOptions: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

let cached: grpc.ServiceClientConstructor | undefined;

/** The SkillService client constructor (and, via `.service`, its definition for servers). */
export function skillServiceDefinition(): grpc.ServiceClientConstructor {
  if (!cached) {
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(skillProtoPath, loaderOptions)) as unknown as {
      skillserve: { v1: { SkillService: grpc.ServiceClientConstructor } };
    };
    cached = pkg.skillserve.v1.SkillService;
  }
  return cached;
}

/** Fully qualified service name, as health checks name it. */
export const SKILL_SERVICE_NAME = 'skillserve.v1.SkillService';
