import { AppError } from '../errors/index.js';
import type { Answer } from '../gateway/inference.js';
import type { InferJobData } from '../queue/job.js';
import type { WireTensor } from '../skills/proto.js';
import type { ServedModel } from './models.js';

/** OpenAI's own cap on inputs per embeddings request. */
const MAX_INPUTS = 2048;
const MAX_TOKEN_ID = 2 ** 31 - 1;
const FIELDS = new Set(['model', 'input', 'encoding_format', 'dimensions', 'user']);

export interface EmbeddingsRequest {
  model: string;
  /** Texts, or token-id arrays. */
  inputs: (string | number[])[];
  encoding: 'float' | 'base64';
}

const bad = (field: string, message: string) => new AppError('BAD_REQUEST', `${field}: ${message}`, { field });

/** A `POST /v1/embeddings` body, checked strictly: an option we cannot honour is a 400, never ignored. */
export function parseEmbeddingsRequest(body: unknown, maxChars: number): EmbeddingsRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new AppError('BAD_REQUEST', 'the body must be a JSON object');
  }
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !FIELDS.has(k));
  if (unknown.length > 0) throw bad(unknown[0]!, 'unknown field');
  if (b.dimensions !== undefined) throw bad('dimensions', 'the models served here have fixed dimensions');
  if (b.user !== undefined && typeof b.user !== 'string') throw bad('user', 'must be a string');
  const encoding = b.encoding_format ?? 'float';
  if (encoding !== 'float' && encoding !== 'base64') throw bad('encoding_format', 'must be "float" or "base64"');
  const raw = b.input;
  let inputs: (string | number[])[];
  if (typeof raw === 'string') inputs = [raw];
  else if (Array.isArray(raw) && raw.length > 0 && raw.every((x) => typeof x === 'number')) inputs = [raw as number[]];
  else if (Array.isArray(raw) && raw.length > 0) inputs = raw as (string | number[])[];
  else throw bad('input', 'a string, an array of strings, or token arrays, not empty');
  if (inputs.length > MAX_INPUTS) throw bad('input', `at most ${MAX_INPUTS} inputs`);
  for (const [i, x] of inputs.entries()) {
    if (typeof x === 'string') {
      if (x.length === 0) throw bad('input', `input[${i}] is empty`);
      if (x.length > maxChars)
        throw new AppError('INPUT_TOO_LARGE', `input[${i}] is longer than ${maxChars} characters`, { field: 'input' });
    } else if (
      !Array.isArray(x) ||
      x.length === 0 ||
      !x.every((t) => Number.isInteger(t) && t >= 0 && t <= MAX_TOKEN_ID)
    ) {
      throw bad('input', `input[${i}] must be a non-empty string or a non-empty array of token ids`);
    } else if (x.length > maxChars) {
      throw new AppError('INPUT_TOO_LARGE', `input[${i}] has more than ${maxChars} tokens`, { field: 'input' });
    }
  }
  return { model: b.model as string, inputs, encoding };
}

/** The job item for one input: text for a text model, an INT64 [1, n] `ids` tensor for a token model. */
export function embeddingItem(model: ServedModel, input: string | number[], index: number): InferJobData['item'] {
  const base = { task: model.task, maxTokens: 0, modelVersion: '' };
  if (model.tokenInput) {
    if (typeof input === 'string')
      throw bad('input', `${model.id} takes token arrays (it has no tokenizer); input[${index}] is text`);
    const tensor: WireTensor = { name: 'ids', datatype: 'INT64', shape: [1, input.length], int64Data: input };
    return { ...base, tensors: [tensor] };
  }
  if (typeof input !== 'string') throw bad('input', `${model.id} takes text; input[${index}] is token ids`);
  return { ...base, text: input };
}

/** The vector and its token count, from the skill's answer (nlp's JSON or a tensor model's output). */
export function embeddingOf(answer: Answer, input: string | number[]): { vector: number[]; tokens: number } {
  const out = answer.output as { embedding?: number[]; tokens?: number } | WireTensor[];
  if (Array.isArray(out)) {
    const tensor = out.find((t) => t.name === 'embedding') ?? out[0];
    return { vector: tensor?.fp32Data ?? [], tokens: Array.isArray(input) ? input.length : 0 };
  }
  return { vector: out.embedding ?? [], tokens: out.tokens ?? 0 };
}

/** OpenAI's base64 encoding: the vector's float32 values, little-endian, base64. */
export function base64Vector(vector: number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((v, i) => bytes.writeFloatLE(v, i * 4));
  return bytes.toString('base64');
}
