import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import express, { type RequestHandler } from 'express';
import { AppError } from '../errors/index.js';

/**
 * A JSON body must be UTF-8 text (RFC 8259 §8.1). Bytes that are not are refused rather than
 * decoded with U+FFFD in their place: the model would see a different input than was sent, and
 * two different bodies would share one cache entry.
 */
export function notUtf8(): AppError {
  return new AppError('INVALID_JSON', 'the request body is not valid JSON: it is not well-formed UTF-8', {
    reason: 'encoding',
  });
}

/** The body's text, or INVALID_JSON when its bytes are not well-formed UTF-8. */
export function decodeUtf8(body: Buffer): string {
  if (!isUtf8(body)) throw notUtf8();
  return body.toString('utf8');
}

/**
 * express.json's `verify` hook: the same check on the bytes before body-parser decodes them
 * (which would replace bad sequences silently). Bodies declared in another charset (UTF-16/32,
 * which body-parser also reads) are left to it.
 */
export function verifyUtf8(_req: IncomingMessage, _res: unknown, body: Buffer, encoding: string): void {
  if (encoding.toLowerCase().replace('-', '') === 'utf8' && !isUtf8(body)) throw notUtf8();
}

/** The media types our JSON routes read: `application/json` and the `+json` family. */
export const JSON_TYPES = ['application/json', 'application/*+json'];

/**
 * express.json as the routes take it: any JSON value at the top (the routes say what they
 * want), bodies up to `limit` bytes, UTF-8 checked before decoding ({@link verifyUtf8}).
 */
export function strictJson(limit: number, type: string | string[] = JSON_TYPES): RequestHandler {
  return express.json({ limit, strict: false, type, verify: verifyUtf8 });
}
