import { setTimeout as sleep } from 'node:timers/promises';
import type { ErrorBody } from '../../../errors/index.js';
import { retryAfterMs, statusError, transportError } from './upstream-errors.js';

/** Time kept back from the caller's deadline so our answer, even an error, reaches it in time. */
const REPLY_MARGIN_MS = 100;
/** Wait before retrying a 429 that names no Retry-After; doubles with each attempt. */
const DEFAULT_BACKOFF_MS = 250;

export interface UpstreamOptions {
  /** Root of the OpenAI-compatible API, ending in /v1, without a trailing slash. */
  baseUrl: string;
  apiKey?: string;
  /** Budget of one request, retries included. */
  timeoutMs: number;
  maxRetries: number;
}

export interface CallLimits {
  /** Epoch ms by which the caller needs the answer. */
  deadline?: number;
  /** Fires when the caller gives up. */
  signal?: AbortSignal;
}

export type UpstreamResult = { ok: true; body: unknown } | { ok: false; error: ErrorBody };

/** Counts of what the upstream was asked and answered, for tests and the skill's own reporting. */
export interface UpstreamStats {
  requests: number;
  /** Attempts repeated after a 429 (or a 503 with Retry-After). */
  retries: number;
  byStatus: Record<string, number>;
}

/**
 * JSON over HTTP to an OpenAI-compatible server with Node's fetch (undici: pooled keep-alive
 * connections, so calls reuse sockets). One call's budget covers its retries: a 429 is retried
 * after the upstream's Retry-After when that still fits before the deadline, a bounded number of
 * times; otherwise the call ends at once as OVERLOADED with the upstream's retryAfterS.
 */
export function createUpstream(opts: UpstreamOptions) {
  const stats: UpstreamStats = { requests: 0, retries: 0, byStatus: {} };
  const headers = { 'content-type': 'application/json', ...upstreamHeaders(opts.apiKey) };

  async function attempt(
    path: string,
    init: RequestInit,
    budgetEnd: number,
    callerSignal?: AbortSignal,
  ): Promise<{ status: number; headers: Headers; text: string } | { error: ErrorBody }> {
    const remaining = budgetEnd - Date.now();
    if (remaining <= 0) return { error: transportError(undefined, true) };
    const timeout = AbortSignal.timeout(remaining);
    const signal = callerSignal ? AbortSignal.any([timeout, callerSignal]) : timeout;
    stats.requests++;
    try {
      const res = await fetch(`${opts.baseUrl}${path}`, { ...init, headers, signal });
      // The body is read under the same signal: a server that stalls mid-answer times out too.
      const text = await res.text();
      stats.byStatus[res.status] = (stats.byStatus[res.status] ?? 0) + 1;
      return { status: res.status, headers: res.headers, text };
    } catch (err) {
      return { error: transportError(err, timeout.aborted || callerSignal?.aborted === true) };
    }
  }

  async function request(
    path: string,
    payload: unknown,
    model: string,
    limits: CallLimits = {},
  ): Promise<UpstreamResult> {
    const budgetEnd = Math.min(
      Date.now() + opts.timeoutMs,
      limits.deadline === undefined ? Infinity : limits.deadline - REPLY_MARGIN_MS,
    );
    const init: RequestInit = { method: 'POST', ...(payload === undefined ? {} : { body: JSON.stringify(payload) }) };
    for (let retry = 0; ; retry++) {
      const res = await attempt(path, init, budgetEnd, limits.signal);
      if ('error' in res) return { ok: false, error: res.error };
      if (res.status >= 200 && res.status < 300) {
        try {
          return { ok: true, body: JSON.parse(res.text) };
        } catch {
          return { ok: false, error: { code: 'SKILL_ERROR', message: 'the upstream answered with malformed JSON' } };
        }
      }
      const askedMs = retryAfterMs(res.headers);
      const retryable = res.status === 429 || (res.status === 503 && askedMs !== undefined);
      const waitMs = askedMs ?? DEFAULT_BACKOFF_MS * 2 ** retry;
      if (!retryable || retry >= opts.maxRetries || Date.now() + waitMs >= budgetEnd) {
        const retryAfterS = retryable ? Math.max(1, Math.ceil(waitMs / 1000)) : undefined;
        return { ok: false, error: statusError(res.status, res.text, model, retryAfterS) };
      }
      stats.retries++;
      try {
        await sleep(waitMs, undefined, limits.signal ? { signal: limits.signal } : undefined);
      } catch {
        return { ok: false, error: transportError(undefined, true) };
      }
    }
  }

  return { request, stats };
}

export type Upstream = ReturnType<typeof createUpstream>;

/** What every request to the upstream sends: JSON wanted, and the API key when there is one. */
export function upstreamHeaders(apiKey: string | undefined): Record<string, string> {
  return { accept: 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) };
}

/** "http://h:8000" and "http://h:8000/v1/" both become "http://h:8000/v1". */
export function normaliseBaseUrl(url: string): string {
  const trimmed = url.replace(/\/+$/, '');
  return /\/v1$/.test(trimmed) ? trimmed : `${trimmed}/v1`;
}
