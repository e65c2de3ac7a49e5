import { AppError } from '../errors/index.js';
import { socketFailureCodes } from '../lib/socket-errors.js';

/** SQLSTATEs meaning "the database cannot serve this right now", not "this request is wrong". */
const unavailableStates = new Set([
  '57P01', // admin_shutdown: the server is stopping
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up or recovering
  '53300', // too_many_connections
  '57014', // query_canceled: our statement_timeout fired
  '40P01', // deadlock_detected (the store retries first)
  '40001', // serialization_failure
]);

/** The messages pg / pg-pool use for its own timeouts and closed pools. */
const unavailableMessages =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connection error|Cannot use a pool after calling end|the database system is (starting up|shutting down|in recovery mode)/i;

/** True when `err` is Postgres being down, unreachable, overloaded or too slow. */
function isPgUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (unavailableStates.has(code) || code.startsWith('08') || socketFailureCodes.has(code)) return true;
  // AggregateError from a dual-stack connect carries its causes in `errors`.
  const nested = (err as { errors?: unknown[] } | undefined)?.errors;
  if (Array.isArray(nested) && nested.some(isPgUnavailable)) return true;
  return typeof e?.message === 'string' && unavailableMessages.test(e.message);
}

/** DATABASE_UNAVAILABLE for a Postgres outage, undefined for anything else. */
export function pgOutageError(err: unknown): AppError | undefined {
  return isPgUnavailable(err) ? pgToAppError(err) : undefined;
}

/** True for the failures worth one more attempt in a fresh transaction. */
export function isPgRetryable(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === '40P01' || code === '40001';
}

/**
 * Maps a pg / driver error to an {@link AppError} once, at the store boundary: connection
 * trouble and timeouts become DATABASE_UNAVAILABLE (503), constraint and encoding violations
 * BAD_REQUEST naming the field (via `constraintFields`, constraint name → API field), anything
 * else INTERNAL. The driver's message, which may quote SQL or values, is kept only as the cause
 * (for logs), never in the API message.
 */
export function pgToAppError(err: unknown, constraintFields: Readonly<Record<string, string>> = {}): AppError {
  if (err instanceof AppError) return err;
  if (isPgUnavailable(err)) {
    return new AppError('DATABASE_UNAVAILABLE', undefined, undefined, { cause: err, retryAfterS: 1 });
  }
  const { code, constraint } = (err ?? {}) as { code?: unknown; constraint?: unknown };
  if (code === '23514' || code === '23502') {
    const field = typeof constraint === 'string' ? constraintFields[constraint] : undefined;
    return new AppError(
      'BAD_REQUEST',
      field ? `${field}: out of the allowed range` : 'a value is out of the allowed range',
      field ? { field } : undefined,
      { cause: err },
    );
  }
  if (code === '22021' || code === '22P05') {
    return new AppError('BAD_REQUEST', 'text must be valid UTF-8 without NUL characters', undefined, { cause: err });
  }
  if (code === '54000') {
    return new AppError('BAD_REQUEST', 'a value is too long to store', undefined, { cause: err });
  }
  return new AppError('INTERNAL', undefined, undefined, { cause: err });
}
