import { z } from 'zod';
import { AppError } from '../errors/index.js';

/** Path parameter and catalogue key of a skill. */
export const skillNamePattern = /^[a-z][a-z0-9-]{0,39}$/;

const inferBodySchema = z.strictObject({
  input: z.string().min(1, 'must not be empty'),
  task: z.string().min(1).max(64).optional(),
  max_tokens: z.number().int().min(1).max(32_768).optional(),
  temperature: z.number().min(0).max(2).optional(),
  model_version: z.string().max(64).optional(),
  /** Relative deadline; the header X-Deadline-Ms says the same. */
  deadline_ms: z.number().int().min(1).optional(),
});

export type InferBody = z.infer<typeof inferBodySchema>;

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
    }));
    const first = problems[0] ?? { field: '(body)', problem: 'invalid' };
    throw new AppError('BAD_REQUEST', `${first.field}: ${first.problem}`, { problems });
  }
  if (parsed.data.input.length > maxInputChars) {
    throw new AppError(
      'INPUT_TOO_LARGE',
      `input has ${parsed.data.input.length} characters; the limit is ${maxInputChars}`,
      {
        field: 'input',
        limit: maxInputChars,
      },
    );
  }
  return parsed.data;
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
