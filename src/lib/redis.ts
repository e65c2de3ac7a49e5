import { once } from 'node:events';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { type Config, redactUrl } from '../config/index.js';
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

/** One Redis or a Redis Cluster: what {@link openRedis} returns, and what the project's classes take. */
export type RedisClient = Redis | Cluster;

/** The settings that say where Redis is. */
export type RedisTarget = Pick<Config, 'REDIS_URL' | 'REDIS_CLUSTER_NODES'>;

/** Where Redis is, for messages: the URL without its password, or the cluster's seeds. */
export function describeRedis(target: RedisTarget): string {
  const nodes = target.REDIS_CLUSTER_NODES;
  if (nodes.length === 0) return `Redis at ${redactUrl(target.REDIS_URL)}`;
  return `Redis Cluster (REDIS_CLUSTER_NODES ${nodes.map((n) => `${n.host}:${n.port}`).join(',')})`;
}

/**
 * The one way the roles open Redis: one server (REDIS_URL), or ioredis's Cluster client when
 * REDIS_CLUSTER_NODES names seeds, with the same bounds either way (see {@link createRedis}).
 * The single-server path is exactly createRedis. Cluster: the URL gives only the scheme (TLS),
 * user and password; MOVED/ASK redirections (a failover, a resharding) are followed up to
 * `maxRedirections` times, and TRYAGAIN/CLUSTERDOWN retried after 100 ms, within the command's bound.
 */
export function openRedis(
  target: RedisTarget,
  opts: { name: string; blocking?: boolean; commandTimeoutMs?: number; autoPipelining?: boolean },
): RedisClient {
  if (target.REDIS_CLUSTER_NODES.length === 0) {
    const { autoPipelining: _a, ...rest } = opts;
    return createRedis(target.REDIS_URL, rest);
  }
  const url = new URL(target.REDIS_URL);
  const cluster = new Cluster(target.REDIS_CLUSTER_NODES, {
    // Reads from masters only: a replica may lag, and a job or limiter read must see its own writes.
    scaleReads: 'master',
    enableReadyCheck: true,
    maxRedirections: 16,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: 2_000,
    clusterRetryStrategy: reconnectDelay,
    // As createRedis: command connections fail at once while the cluster is unreachable.
    enableOfflineQueue: opts.blocking === true,
    // Groups each node's commands of one tick into one write: the gateway's hot path sends the
    // limiter's and the cache's commands separately here (their keys are in different slots).
    enableAutoPipelining: opts.autoPipelining === true,
    redisOptions: {
      connectionName: opts.name,
      connectTimeout: 2_000,
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
      ...(opts.blocking
        ? { maxRetriesPerRequest: null }
        : { maxRetriesPerRequest: 1, commandTimeout: opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS }),
    },
  });
  cluster.on('error', () => undefined);
  return cluster;
}

/**
 * Resolves once `redis` is ready; start-up fails with a clear message if it is not within
 * `timeoutMs` (`where` names it: {@link describeRedis}, or a URL).
 */
export async function redisReady(redis: RedisClient, where: string, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return;
  const label = /^[a-z+]+:\/\//.test(where) ? `Redis at ${redactUrl(where)}` : where;
  let last: Error | undefined;
  const started = Date.now();
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  // ioredis Cluster wraps the node's own words (e.g. "cluster support disabled") in lastNodeError.
  const onError = (err: Error & { lastNodeError?: Error }) => {
    last = err.lastNodeError ? new Error(`${err.message} ${err.lastNodeError.message}`) : err;
  };
  redis.on('error', onError);
  try {
    await once(redis, 'ready', { signal: ac.signal });
  } catch {
    const why = last ? `: ${last.message}` : '';
    if (redis.isCluster)
      throw new Error(
        `${label} is not a ready cluster (gave up after ${Date.now() - started} ms)${why}. ` +
          `Each seed must be a node of a Redis Cluster whose every slot is served (cluster_state:ok), ` +
          `reachable from here with the user and password of REDIS_URL; for one Redis, leave REDIS_CLUSTER_NODES unset.`,
      );
    throw new Error(`${label} is not reachable (waited ${timeoutMs} ms)${why}`);
  } finally {
    clearTimeout(timer);
    redis.off('error', onError);
  }
}

/** Closes politely when connected (QUIT lets replies drain), at once otherwise: never waits on a dead Redis. */
export async function closeRedis(redis: RedisClient): Promise<void> {
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
