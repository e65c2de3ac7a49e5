import type { IncomingHttpHeaders } from 'node:http';
import { AppError } from '../errors/index.js';

const idempotencyKeyPattern = /^[\x21-\x7e]{1,128}$/;

/** The request's `Idempotency-Key` (1 to 128 printable ASCII characters), if it sent one. */
export function idempotencyKey(headers: IncomingHttpHeaders): string | undefined {
  const raw = headers['idempotency-key'];
  if (raw === undefined) return undefined;
  const key = Array.isArray(raw) ? raw[0] : raw;
  if (!key || !idempotencyKeyPattern.test(key)) {
    throw new AppError('BAD_REQUEST', 'Idempotency-Key: 1 to 128 printable ASCII characters', {
      header: 'Idempotency-Key',
    });
  }
  return key;
}
