import type { ErrorBody } from '../../../errors/index.js';

/** Longest message taken from an upstream's error body (only ever for BAD_REQUEST). */
const MAX_MESSAGE = 300;

/**
 * Milliseconds an upstream asks us to wait: `retry-after-ms` (OpenAI's), else `Retry-After` as
 * seconds or an HTTP date. Undefined when absent or unreadable; never negative.
 */
export function retryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && /^\d+(\.\d+)?$/.test(ms.trim())) return Math.ceil(Number(ms));
  const value = headers.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.ceil(Number(value) * 1000);
  // An HTTP date names its day and month ("Wed, 21 Oct 2026 07:28:00 GMT"); "-3" is not one.
  const date = /[a-z]{3}/i.test(value) ? Date.parse(value) : NaN;
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The message in an upstream's error body, in the shapes OpenAI, vLLM, llama.cpp and Ollama use. */
export function upstreamMessage(body: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  const b = parsed as { error?: unknown; message?: unknown } | null;
  const error = b?.error;
  const message =
    typeof error === 'string'
      ? error
      : typeof (error as { message?: unknown } | undefined)?.message === 'string'
        ? (error as { message: string }).message
        : typeof b?.message === 'string'
          ? b.message
          : undefined;
  return message?.slice(0, MAX_MESSAGE);
}

/**
 * An upstream HTTP failure as one of our errors. Only a 4xx about the request itself passes the
 * upstream's message on (it describes the caller's input); the others say what happened without
 * the upstream's internals.
 */
export function statusError(status: number, body: string, model: string, retryAfterS?: number): ErrorBody {
  const retry = retryAfterS === undefined ? {} : { details: { retryAfterS } };
  if (status === 400 || status === 422) {
    return {
      code: 'BAD_REQUEST',
      message: `the model rejected the request: ${upstreamMessage(body) ?? `upstream answered ${status}`}`,
    };
  }
  if (status === 413) return { code: 'INPUT_TOO_LARGE', message: 'the input is larger than the model accepts' };
  if (status === 401 || status === 403) {
    return {
      code: 'SKILL_ERROR',
      message: `the upstream refused the skill's credentials (${status}); the operator should check OPENAI_API_KEY`,
    };
  }
  if (status === 404) {
    return {
      code: 'SKILL_ERROR',
      message: `the upstream does not serve model "${model}" (404); it may have been unloaded or renamed`,
    };
  }
  if (status === 408) return { code: 'SKILL_TIMEOUT', message: 'the upstream timed out on the request (408)' };
  if (status === 429) {
    return { code: 'OVERLOADED', message: 'the upstream model is at capacity (429)', ...retry };
  }
  if (status === 502 || status === 503 || status === 504) {
    return { code: 'SKILL_UNAVAILABLE', message: `the upstream model is not available (${status})`, ...retry };
  }
  return { code: 'SKILL_ERROR', message: `the upstream failed (${status})` };
}

/** A failure before any HTTP status: connection refused, reset, DNS, or our own abort. */
export function transportError(err: unknown, timedOut: boolean): ErrorBody {
  if (timedOut) return { code: 'SKILL_TIMEOUT', message: 'the upstream model did not answer in time' };
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  return {
    code: 'SKILL_UNAVAILABLE',
    message: `the upstream model is not reachable${code ? ` (${code})` : ''}`,
  };
}
