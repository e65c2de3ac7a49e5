import type { ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../../observability/logger.js';
import { AppError, type ErrorCode } from '../../errors/index.js';
import { pgOutageError } from '../../db/pg-errors.js';
import { redisOutageError } from '../../lib/redis.js';

/** body-parser's error types, mapped to our codes. */
const bodyErrors: Record<string, ErrorCode> = {
  'entity.parse.failed': 'INVALID_JSON',
  'entity.too.large': 'PAYLOAD_TOO_LARGE',
  'encoding.unsupported': 'UNSUPPORTED_MEDIA_TYPE',
  'charset.unsupported': 'UNSUPPORTED_MEDIA_TYPE',
  'entity.verify.failed': 'BAD_REQUEST',
  'request.aborted': 'BAD_REQUEST',
  'request.size.invalid': 'BAD_REQUEST',
  'stream.encoding.set': 'BAD_REQUEST',
};

/** A body that is not JSON, whichever layer parsed it. */
export function invalidJson(): AppError {
  return new AppError('INVALID_JSON', 'the request body is not valid JSON');
}

export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const type = (err as { type?: unknown })?.type;
  if (typeof type === 'string' && bodyErrors[type]) {
    const code = bodyErrors[type];
    return code === 'INVALID_JSON' ? invalidJson() : new AppError(code);
  }
  const status = (err as { status?: unknown })?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) return new AppError('BAD_REQUEST');
  // A dependency's outage that reached here unmapped is still an outage (503 with Retry-After),
  // whichever route or step met it: never a 500, never the driver's message.
  return redisOutageError(err) ?? pgOutageError(err) ?? new AppError('INTERNAL', undefined, undefined, { cause: err });
}

/**
 * Answers `{ error: { code, message, requestId } }` with the error's status (and Retry-After for
 * anything temporary); never a stack trace, never a driver's message. Plain node:http, so the
 * fast path answers errors exactly as the Express error handler does.
 */
export function sendError(err: unknown, requestId: string, res: ServerResponse, log: () => Logger): void {
  const appError = toAppError(err);
  if (appError.code === 'INTERNAL') log().error({ err }, 'unhandled error');
  // Every 503 is temporary by definition; tell the client when to come back.
  const retryAfter = appError.retryAfterS ?? (appError.status === 503 ? 1 : undefined);
  if (res.headersSent) {
    res.end();
    return;
  }
  if (retryAfter !== undefined) res.setHeader('Retry-After', String(retryAfter));
  sendJson(res, appError.status, { error: { ...appError.toJSON(), requestId } });
}

/** A JSON answer with the headers Express's res.json would set. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(json));
  res.end(json);
}

export function errorHandler() {
  return function errorHandlerMiddleware(err: unknown, req: Request, res: Response, _next: NextFunction): void {
    sendError(err, req.id, res, () => req.log);
  };
}

export function notFound() {
  return function notFoundMiddleware(req: Request, _res: Response, next: NextFunction): void {
    next(new AppError('NOT_FOUND', `no route for ${req.method} ${req.path.slice(0, 200)}`));
  };
}
