import { createHash } from 'node:crypto';
import type { RecallPosition, TripleFilter } from './entity-store.js';
import { badRequest } from './validation.js';

/** Format version inside the cursor, so a later format can reject (or read) older cursors. */
const VERSION = 1;

/**
 * What a cursor belongs to: the tenant and the query's filters. A cursor replayed with other
 * filters or by another tenant is refused rather than silently starting somewhere odd.
 */
export function cursorScope(tenantId: string, filter: TripleFilter & { minConfidence?: number }): string {
  return createHash('sha256')
    .update(
      JSON.stringify([
        tenantId,
        filter.subject ?? null,
        filter.verb ?? null,
        filter.object ?? null,
        filter.minConfidence ?? null,
      ]),
    )
    .digest('base64url')
    .slice(0, 16);
}

/** An opaque page token: base64url of a small JSON position. Clients pass it back unchanged. */
export function encodeCursor(position: RecallPosition, scope: string): string {
  return Buffer.from(
    JSON.stringify({ v: VERSION, c: position.confidence, u: position.updatedAtUs, i: position.id, s: scope }),
  ).toString('base64url');
}

/** Reads a cursor made by {@link encodeCursor}; anything else is a 400 naming `cursor`. */
export function decodeCursor(cursor: string, scope: string): RecallPosition {
  const invalid = (problem = 'is not a cursor this API returned') => badRequest([{ field: 'cursor', problem }]);
  if (cursor.length === 0 || cursor.length > 256 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid();
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  const c = raw as { v?: unknown; c?: unknown; u?: unknown; i?: unknown; s?: unknown } | null;
  if (
    typeof c !== 'object' ||
    c === null ||
    c.v !== VERSION ||
    typeof c.c !== 'number' ||
    !(c.c >= 0 && c.c <= 1) ||
    typeof c.u !== 'string' ||
    !/^-?\d{1,17}$/.test(c.u) ||
    typeof c.i !== 'string' ||
    !/^\d{1,18}$/.test(c.i) ||
    typeof c.s !== 'string'
  ) {
    throw invalid();
  }
  if (c.s !== scope) throw invalid('belongs to a different query; start again without a cursor');
  return { confidence: c.c, updatedAtUs: c.u, id: c.i };
}
