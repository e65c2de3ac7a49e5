import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Express, NextFunction, Request, Response } from 'express';
import type { Logger } from '../../observability/logger.js';
import { bounded, statusClass } from '../../observability/metrics.js';
import type { GatewayMetrics } from '../metrics.js';

declare module 'express-serve-static-core' {
  interface Request {
    id: string;
    log: Logger;
    /** Epoch ms when the request reached the cluster: nginx's X-Request-Start, else when the gateway saw it. */
    receivedAt: number;
    /** performance.now() when the gateway received the request (for the Server-Timing phases). */
    startedAt: number;
  }
}

/** How far back an X-Request-Start may be and still be believed (nginx sets it; clocks may differ a little). */
const MAX_QUEUED_MS = 60_000;

/** `t=<epoch seconds>` as nginx writes it (`$msec`), as epoch ms; `now` when absent or implausible. */
export function requestStart(header: string | string[] | undefined, now: number): number {
  const raw = Array.isArray(header) ? header[0] : header;
  const match = raw ? /^t=(\d{9,11}(?:\.\d{1,6})?)$/.exec(raw) : null;
  if (!match) return now;
  const at = Math.round(Number(match[1]) * 1000);
  return at <= now && now - at <= MAX_QUEUED_MS ? at : now;
}

/** A client's own id is kept only if it is short and plain, so it cannot forge log lines or headers. */
const acceptableId = /^[A-Za-z0-9._:-]{1,128}$/;

export interface RequestContextOptions {
  /** The `X-Served-By` value (an opaque instance name), or undefined to send none. */
  servedBy: string | undefined;
  metrics: GatewayMetrics;
}

const kLog = Symbol('log');

/**
 * `req.log`: a child logger carrying the request id (and the tenant, once authenticated), made
 * the first time something logs for the request. Most requests never log, and a pino child per
 * request was a measurable share of the cache-hit path.
 */
export function requestLogger(app: Express, logger: Logger): void {
  Object.defineProperty(app.request, 'log', {
    configurable: true,
    get(this: Request & { [kLog]?: Logger }): Logger {
      return (this[kLog] ??= logger.child({
        requestId: this.id,
        ...(this.principal ? { tenant: this.principal.tenant } : {}),
      }));
    },
  });
}

/** What every request gets, whichever HTTP layer serves it (Express or the fast path). */
export interface TrackedRequest {
  id: string;
  receivedAt: number;
  /** performance.now() when the gateway received the request. */
  startedAt: number;
}

/**
 * Gives a request its id (the client's X-Request-Id if acceptable) and arrival time, sets
 * X-Request-Id and X-Served-By (when enabled), and counts it in flight and by duration once it closes (`route`
 * and `log` are asked then).
 */
export function trackRequest(
  req: IncomingMessage,
  res: ServerResponse,
  { servedBy, metrics }: RequestContextOptions,
  route: () => string,
  log: () => Logger,
): TrackedRequest {
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && acceptableId.test(given) ? given : randomUUID();
  const receivedAt = requestStart(req.headers['x-request-start'], Date.now());
  res.setHeader('X-Request-Id', id);
  if (servedBy) res.setHeader('X-Served-By', servedBy);
  const startedAt = performance.now();
  const start = process.hrtime.bigint();
  metrics.inFlight.inc();
  metrics.requestsInFlight.value++;
  res.once('close', () => {
    metrics.inFlight.dec();
    metrics.requestsInFlight.value--;
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const labels = {
      route: route(),
      method: bounded('method', req.method ?? ''),
      status_class: statusClass(res.statusCode),
    };
    metrics.requestDuration.observe(labels, seconds);
    if (res.statusCode >= 500) log().warn({ status: res.statusCode, route: labels.route, seconds }, 'request failed');
    else if (log().isLevelEnabled('debug'))
      log().debug({ status: res.statusCode, route: labels.route, seconds }, 'request');
  });
  return { id, receivedAt, startedAt };
}

/** {@link trackRequest} as Express middleware; `req.log` comes from {@link requestLogger}. */
export function requestContext(opts: RequestContextOptions) {
  return function requestContextMiddleware(req: Request, res: Response, next: NextFunction): void {
    const route = () => (req.route ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched');
    const { id, receivedAt, startedAt } = trackRequest(req, res, opts, route, () => req.log);
    req.id = id;
    req.receivedAt = receivedAt;
    req.startedAt = startedAt;
    next();
  };
}
