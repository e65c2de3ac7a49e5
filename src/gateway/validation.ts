import { z } from 'zod';
import { AppError } from '../errors/index.js';
import type { WireTensor } from '../skills/proto.js';
import { httpTensorSchema, toWireTensors } from './tensors.js';

/** Path parameter and catalogue key of a skill. */
export const skillNamePattern = /^[a-z][a-z0-9-]{0,39}$/;

const inferBodySchema = z
  .strictObject({
    /** Text, for text skills. */
    input: z.string().min(1, 'must not be empty').optional(),
    /** Typed tensors (Open Inference Protocol), for tensor models. */
    inputs: z.array(httpTensorSchema).min(1, 'give at least one tensor').max(64).optional(),
    task: z.string().min(1).max(64).optional(),
    /** For skills hosting several models (onnx): which one; the same as `task` there. */
    model: z.string().min(1).max(64).optional(),
    max_tokens: z.number().int().min(1).max(32_768).optional(),
    temperature: z.number().min(0).max(2).optional(),
    model_version: z.string().max(64).optional(),
    /** Relative deadline; the header X-Deadline-Ms says the same. */
    deadline_ms: z.number().int().min(1).optional(),
  })
  .superRefine((body, ctx) => {
    if ((body.input === undefined) === (body.inputs === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [body.input === undefined ? 'input' : 'inputs'],
        message: 'give either "input" (text) or "inputs" (tensors)',
      });
    }
    if (body.model !== undefined && body.task !== undefined && body.model !== body.task) {
      ctx.addIssue({ code: 'custom', path: ['model'], message: `"${body.model}" contradicts task "${body.task}"` });
    }
  });

export type InferBody = Omit<z.infer<typeof inferBodySchema>, 'inputs'> & {
  /** `inputs`, checked against their shapes and datatypes and ready for the wire. */
  tensors?: WireTensor[];
};

/**
 * Validates an infer request body. The first problem is named in the message
 * (`input: expected string, received number`), all of them in `details.problems`.
 */
export function parseInferBody(body: unknown, maxInputChars: number): InferBody {
  if (body === undefined) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'send a JSON body with content-type: application/json');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new AppError('BAD_REQUEST', 'the body must be a JSON object like {"input": "..."}');
  }
  const parsed = inferBodySchema.safeParse(body);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => ({
      field: i.path.join('.') || (i.code === 'unrecognized_keys' ? i.keys.join(', ') : '(body)'),
      problem: i.message,
      ...inputNamed(body, i.path),
    }));
    const first = problems[0] ?? { field: '(body)', problem: 'invalid' };
    const named = 'input' in first ? ` (input "${first.input}")` : '';
    throw new AppError('BAD_REQUEST', `${first.field}${named}: ${first.problem}`, { problems });
  }
  const { inputs, ...rest } = parsed.data;
  if (inputs) return { ...rest, tensors: toWireTensors(inputs) };
  if (rest.input === undefined) return rest;
  const input = normalizeText(rest.input);
  if (input.length > maxInputChars) {
    throw new AppError('INPUT_TOO_LARGE', `input has ${input.length} characters; the limit is ${maxInputChars}`, {
      field: 'input',
      limit: maxInputChars,
    });
  }
  return { ...rest, input };
}

/**
 * The text a model sees: Unicode NFC. Canonically equivalent strings (é as one code point or as
 * e + combining accent) are the same input, so they get the same answer — computed from the same
 * text — and share one cache entry; without this, the second form would be answered from the
 * first form's text. Nothing else is changed (no trimming, no case folding).
 */
export function normalizeText(text: string): string {
  return text.normalize('NFC');
}

/** For a problem inside `inputs[i]`, the name of that tensor when it has one. */
function inputNamed(body: object, path: readonly PropertyKey[]): { input?: string } {
  if (path[0] !== 'inputs' || typeof path[1] !== 'number') return {};
  const name = (body as { inputs?: { name?: unknown }[] }).inputs?.[path[1]]?.name;
  return typeof name === 'string' ? { input: name.slice(0, 64) } : {};
}

/**
 * The request's deadline in ms from now: the body's `deadline_ms`, else the X-Deadline-Ms header,
 * else undefined (the skill's default applies). Above `maxMs` is a 400 naming the field.
 */
export function parseDeadline(
  bodyMs: number | undefined,
  header: string | undefined,
  maxMs: number,
): number | undefined {
  let ms = bodyMs;
  let field = 'deadline_ms';
  if (ms === undefined && header !== undefined) {
    field = 'X-Deadline-Ms';
    ms = /^\d{1,9}$/.test(header.trim()) ? Number(header.trim()) : NaN;
    if (!Number.isInteger(ms) || ms < 1)
      throw new AppError('BAD_REQUEST', `${field}: a whole number of milliseconds >= 1`, { field });
  }
  if (ms !== undefined && ms > maxMs) {
    throw new AppError('BAD_REQUEST', `${field}: at most ${maxMs} ms`, { field, limit: maxMs });
  }
  return ms;
}
