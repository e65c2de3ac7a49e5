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
