import type { NextFunction, Request, Response } from 'express';
import { AppError, type ErrorCode } from '../../errors/index.js';

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

function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const type = (err as { type?: unknown })?.type;
  if (typeof type === 'string' && bodyErrors[type]) {
    const code = bodyErrors[type];
    return new AppError(code, code === 'INVALID_JSON' ? 'the request body is not valid JSON' : undefined);
  }
  const status = (err as { status?: unknown })?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) return new AppError('BAD_REQUEST');
  return new AppError('INTERNAL', undefined, undefined, { cause: err });
}

/** Answers `{ error: { code, message, requestId } }`; never a stack trace, never a driver's message. */
export function errorHandler() {
  return function errorHandlerMiddleware(err: unknown, req: Request, res: Response, _next: NextFunction): void {
    const appError = toAppError(err);
    if (appError.code === 'INTERNAL') req.log.error({ err }, 'unhandled error');
    // Every 503 is temporary by definition; tell the client when to come back.
    const retryAfter = appError.retryAfterS ?? (appError.status === 503 ? 1 : undefined);
    if (retryAfter !== undefined) res.setHeader('Retry-After', String(retryAfter));
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(appError.status).json({ error: { ...appError.toJSON(), requestId: req.id } });
  };
}

export function notFound() {
  return function notFoundMiddleware(req: Request, _res: Response, next: NextFunction): void {
    next(new AppError('NOT_FOUND', `no route for ${req.method} ${req.path.slice(0, 200)}`));
  };
}
