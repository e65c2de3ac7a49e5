/**
 * Every error code the API can answer with, its HTTP status and default message.
 * Codes are stable: clients branch on them, so a code is never renamed or reused.
 */
export const errorCatalogue = {
  BAD_REQUEST: { status: 400, message: 'The request is malformed.' },
  INVALID_JSON: { status: 400, message: 'The request body is not valid JSON.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Send the body as application/json.' },
  UNKNOWN_TASK: { status: 400, message: 'The skill does not offer this task.' },
  INPUT_TOO_LARGE: { status: 413, message: 'The input is larger than allowed.' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is larger than allowed.' },
  UNAUTHORIZED: { status: 401, message: 'A valid API key is required.' },
  NOT_FOUND: { status: 404, message: 'No such route.' },
  SKILL_NOT_FOUND: { status: 404, message: 'No such skill.' },
  JOB_NOT_FOUND: { status: 404, message: 'No such job.' },
  MODEL_NOT_FOUND: { status: 404, message: 'No such model.' },
  RATE_LIMITED: { status: 429, message: 'Too many requests.' },
  TOKENS_RATE_LIMITED: { status: 429, message: 'Too many tokens per minute.' },
  SKILL_UNAVAILABLE: { status: 503, message: 'The skill is not available right now.' },
  BREAKER_OPEN: { status: 503, message: 'The skill is failing; calls are paused for a moment.' },
  DATABASE_UNAVAILABLE: { status: 503, message: 'The database is not reachable.' },
  RATE_LIMIT_UNAVAILABLE: { status: 503, message: 'Rate limits cannot be checked right now.' },
  QUEUE_UNAVAILABLE: { status: 503, message: 'The job queue is not reachable.' },
  OVERLOADED: { status: 503, message: 'The cluster is at capacity; retry later.' },
  SHUTTING_DOWN: { status: 503, message: 'This instance is shutting down; retry.' },
  NO_GATEWAY: { status: 502, message: 'No gateway answered; retry.' },
  GATEWAY_TIMEOUT: { status: 504, message: 'The gateway did not answer in time.' },
  DEADLINE_EXCEEDED: { status: 504, message: 'The deadline passed before the answer was ready.' },
  IDEMPOTENCY_KEY_REUSED: { status: 409, message: 'This Idempotency-Key was used for a different request.' },
  SKILL_TIMEOUT: { status: 504, message: 'The skill did not answer in time.' },
  SKILL_ERROR: { status: 502, message: 'The skill failed to process the request.' },
  INTERNAL: { status: 500, message: 'Internal error.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(errorCatalogue, code);
}
