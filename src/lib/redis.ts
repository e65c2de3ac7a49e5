import { once } from 'node:events';
import { Redis, type RedisOptions } from 'ioredis';
import { redactUrl } from '../config/index.js';
import { AppError } from '../errors/index.js';
import { socketFailureCodes } from './socket-errors.js';

/** Command timeout of a connection that names none: a bound, not a budget (see the callers' own). */
const DEFAULT_COMMAND_TIMEOUT_MS = 2_000;

/**
 * Reconnect delay: doubles from 50 ms up to 500 ms. Short, so a Redis that restarts is used again
 * (and skills re-announce) within half a second of accepting connections, not after a 2 s backoff.
 */
export function reconnectDelay(attempt: number): number {
  return Math.min(50 * 2 ** attempt, 500);
}

/**
 * A Redis connection with bounded connect and command times, so no caller hangs on a dead or
 * hung Redis. Command connections fail at once while disconnected (no offline queue: BullMQ's
 * advice for producers, and what lets the gateway degrade instead of wait) and give up on a
 * command after `commandTimeoutMs`, which callers size to the command's kind: hot-path reads in
 * hundreds of ms, queue writes in about a second. `blocking` connections (BullMQ workers,
 * subscribers) queue while reconnecting and never time out a command.
 */
export function createRedis(
  url: string,
  opts: { name: string; blocking?: boolean; commandTimeoutMs?: number } & RedisOptions,
): Redis {
  const { name, blocking, commandTimeoutMs, ...rest } = opts;
  const redis = new Redis(url, {
    connectionName: name,
    connectTimeout: 2_000,
    ...(blocking
      ? { maxRetriesPerRequest: null, enableReadyCheck: true }
      : {
          maxRetriesPerRequest: 1,
          commandTimeout: commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
          enableOfflineQueue: false,
        }),
    retryStrategy: reconnectDelay,
    ...rest,
  });
  // Connection errors surface where it matters (the command that fails, the breaker, /readyz);
  // without a listener ioredis would print every reconnect attempt to stderr.
  redis.on('error', () => undefined);
  return redis;
}

/** Resolves once `redis` is ready; start-up fails with a clear message if it is not within `timeoutMs`. */
export async function redisReady(redis: Redis, url: string, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return;
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    await once(redis, 'ready', { signal: ac.signal });
  } catch {
    throw new Error(`Redis at ${redactUrl(url)} is not reachable (waited ${timeoutMs} ms)`);
  } finally {
    clearTimeout(timer);
  }
}

/** Closes politely when connected (QUIT lets replies drain), at once otherwise: never waits on a dead Redis. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'ready') {
    await redis.quit().catch(() => redis.disconnect());
  } else {
    redis.disconnect();
  }
}

/**
 * What ioredis (and BullMQ through it) throws while Redis is down, hung, restarting or failing
 * over: its own connection and timeout errors, and the server's replies that mean "not now"
 * (LOADING while it reads its AOF after a restart, BUSY, MASTERDOWN, READONLY after a failover,
 * MISCONF when it cannot write its persistence files, TRYAGAIN/CLUSTERDOWN).
 */
const unavailableMessages =
  /^(Connection is closed|Stream isn't writeable|Command timed out|Reached the max retries per request limit|Connection in subscriber mode)|^(LOADING|BUSY|MASTERDOWN|READONLY|MISCONF|TRYAGAIN|CLUSTERDOWN|NOREPLICAS)\b|connect ETIMEDOUT|Redis is not connected/;

/** True when `err` says Redis cannot serve right now (rather than that a command or script is wrong). */
export function isRedisUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; name?: unknown; errors?: unknown } | undefined;
  if (!e || typeof e !== 'object') return false;
  if (typeof e.code === 'string' && socketFailureCodes.has(e.code)) return true;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  if (Array.isArray(e.errors) && e.errors.some(isRedisUnavailable)) return true;
  return typeof e.message === 'string' && unavailableMessages.test(e.message);
}

/**
 * The one mapping of a Redis outage to the API: 503 QUEUE_UNAVAILABLE with a Retry-After, the
 * driver's message kept only as the cause (for logs). Anything else is returned as undefined.
 */
export function redisOutageError(err: unknown): AppError | undefined {
  if (err instanceof AppError) return err.code === 'QUEUE_UNAVAILABLE' ? err : undefined;
  if (!isRedisUnavailable(err)) return undefined;
  return new AppError('QUEUE_UNAVAILABLE', undefined, undefined, { cause: err, retryAfterS: 1 });
}
