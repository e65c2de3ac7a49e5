import type { ServerResponse } from 'node:http';
import type { AppError } from '../errors/index.js';
import { toAppError } from '../gateway/middleware/error-handler.js';
import type { Logger } from '../observability/logger.js';

/** OpenAI's error body: what its SDKs parse into `err.error` / `err.code`. */
export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/**
 * OpenAI's error `type` for a status. Its SDKs pick the error class from the status alone
 * (401 AuthenticationError, 404 NotFoundError, 429 RateLimitError, …); the type and code are
 * for people and for clients that branch on them.
 */
function typeFor(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** Our stable codes, as OpenAI names the same conditions (the rest go through lower-cased). */
const OPENAI_CODES: Record<string, string> = {
  UNAUTHORIZED: 'invalid_api_key',
  MODEL_NOT_FOUND: 'model_not_found',
  RATE_LIMITED: 'rate_limit_exceeded',
  TOKENS_RATE_LIMITED: 'rate_limit_exceeded',
};

export function openAiErrorBody(err: AppError): OpenAiErrorBody {
  const field = err.details?.field;
  return {
    error: {
      message: err.message,
      type: typeFor(err.status),
      param: typeof field === 'string' ? field : null,
      code: OPENAI_CODES[err.code] ?? err.code.toLowerCase(),
    },
  };
}

/**
 * Answers an error on the OpenAI-compatible routes: the same status (and Retry-After) as the rest
 * of the API, OpenAI's body. A stream already under way cannot change its status: it gets an
 * `error` event and ends (see sse.ts).
 */
export function sendOpenAiError(err: unknown, res: ServerResponse, log: () => Logger): void {
  const appError = toAppError(err);
  if (appError.code === 'INTERNAL') log().error({ err }, 'unhandled error');
  if (res.headersSent) {
    res.end();
    return;
  }
  const retryAfter = appError.retryAfterS ?? (appError.status === 503 ? 1 : undefined);
  if (retryAfter !== undefined) res.setHeader('Retry-After', String(retryAfter));
  const json = JSON.stringify(openAiErrorBody(appError));
  res.statusCode = appError.status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(json));
  res.end(json);
}
