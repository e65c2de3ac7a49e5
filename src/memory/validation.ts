import { z } from 'zod';
import { AppError } from '../errors/index.js';
import type { TripleFilter, TripleInput } from './entity-store.js';

/**
 * Longest accepted text, in characters (code points, as Postgres counts them). The same limits
 * are CHECK constraints in migration 002; they keep each lookup index entry within a btree page.
 */
export const tripleLimits = { subject: 256, verb: 128, object: 512, source: 128 } as const;

/** Confidence of a fact asserted without one. */
const DEFAULT_CONFIDENCE = 1;

// A UTF-16 surrogate without its partner cannot be encoded as UTF-8: it would be stored as
// U+FFFD and read back different from what was sent.
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Why `value` cannot be stored as a triple's text, or undefined when it can. Text is otherwise
 * kept exactly as given: no trimming, no normalisation, any script, quotes, emoji, controls.
 */
export function textProblem(value: string, max: number): string | undefined {
  if (value.length === 0) return 'must not be empty';
  if (value.trim().length === 0) return 'must not be only whitespace';
  // Postgres text cannot hold NUL.
  if (value.includes('\u0000')) return 'must not contain NUL (\\u0000)';
  if (loneSurrogate.test(value)) return 'must be well-formed Unicode (no lone surrogates)';
  // .length counts UTF-16 units, which is never fewer than code points: only count when it matters.
  if (value.length > max) {
    const chars = [...value].length;
    if (chars > max) return `must be at most ${max} characters (got ${chars})`;
  }
  return undefined;
}

const text = (max: number) =>
  z.string().superRefine((value, ctx) => {
    const problem = textProblem(value, max);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const confidence = z.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1');

const tripleSchema = z.strictObject({
  subject: text(tripleLimits.subject),
  verb: text(tripleLimits.verb),
  object: text(tripleLimits.object),
  confidence: confidence.optional(),
  source: text(tripleLimits.source).optional(),
});

const extractSchema = z.strictObject({
  text: z.string().min(1, 'must not be empty'),
  source: text(tripleLimits.source).optional(),
});

interface Problem {
  field: string;
  problem: string;
}

/** `['triples', 3, 'confidence']` → `triples[3].confidence`. */
function fieldName(path: readonly PropertyKey[], prefix = ''): string {
  let out = prefix;
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(body)';
}

/** A 400 naming the first problem's field in its message and every problem in details. */
export function badRequest(problems: Problem[]): AppError {
  const first = problems[0] ?? { field: '(body)', problem: 'invalid' };
  return new AppError('BAD_REQUEST', `${first.field}: ${first.problem}`, { field: first.field, problems });
}

function zodProblems(error: z.ZodError, prefix = ''): Problem[] {
  return error.issues.map((i) => ({
    field:
      i.code === 'unrecognized_keys' ? fieldName([...i.path, i.keys.join(', ')], prefix) : fieldName(i.path, prefix),
    problem: i.code === 'unrecognized_keys' ? 'is not a known field' : i.message,
  }));
}

function requireObject(body: unknown, example: string): Record<string, unknown> {
  if (body === undefined) {
    throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'send a JSON body with content-type: application/json');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest([{ field: '(body)', problem: `must be a JSON object like ${example}` }]);
  }
  return body as Record<string, unknown>;
}

/**
 * Validates `POST /v1/memory/triples`: one triple (`{"subject", "verb", "object", …}`) or many
 * (`{"triples": [ … ]}`, at most `maxBatch`). Every item is checked before anything is written,
 * so one bad item rejects the whole request and names it (`triples[3].confidence: …`).
 */
export function parseAssertBody(body: unknown, opts: { maxBatch: number; defaultSource: string }): TripleInput[] {
  const obj = requireObject(body, '{"subject": "...", "verb": "...", "object": "..."} or {"triples": [...]}');
  let items: unknown[];
  let prefix = '';
  if ('triples' in obj) {
    const extra = Object.keys(obj).filter((k) => k !== 'triples');
    if (extra.length > 0) throw badRequest([{ field: extra.join(', '), problem: 'is not a known field' }]);
    if (!Array.isArray(obj.triples)) throw badRequest([{ field: 'triples', problem: 'must be an array of triples' }]);
    if (obj.triples.length === 0) throw badRequest([{ field: 'triples', problem: 'must not be empty' }]);
    if (obj.triples.length > opts.maxBatch) {
      throw badRequest([
        { field: 'triples', problem: `at most ${opts.maxBatch} triples per request (got ${obj.triples.length})` },
      ]);
    }
    items = obj.triples;
    prefix = 'triples';
  } else {
    items = [obj];
  }
  const out: TripleInput[] = [];
  const problems: Problem[] = [];
  items.forEach((item, i) => {
    const parsed = tripleSchema.safeParse(item);
    if (!parsed.success) {
      problems.push(...zodProblems(parsed.error, prefix ? `${prefix}[${i}]` : ''));
      return;
    }
    out.push({
      subject: parsed.data.subject,
      verb: parsed.data.verb,
      object: parsed.data.object,
      confidence: parsed.data.confidence ?? DEFAULT_CONFIDENCE,
      source: parsed.data.source ?? opts.defaultSource,
    });
  });
  if (problems.length > 0) throw badRequest(problems.slice(0, 20));
  return out;
}

/** Validates `POST /v1/memory/extract`: `{"text": "...", "source"?: "..."}`. */
export function parseExtractBody(body: unknown, maxInputChars: number): { text: string; source?: string } {
  const parsed = extractSchema.safeParse(requireObject(body, '{"text": "..."}'));
  if (!parsed.success) throw badRequest(zodProblems(parsed.error));
  // The model sees NFC, as every text input to a model (see the gateway's normalizeText).
  const text = parsed.data.text.normalize('NFC');
  if (text.length > maxInputChars) {
    throw new AppError('INPUT_TOO_LARGE', `text has ${text.length} characters; the limit is ${maxInputChars}`, {
      field: 'text',
      limit: maxInputChars,
    });
  }
  return { ...parsed.data, text };
}

type Query = Record<string, unknown>;

/** A query parameter given at most once, as a string. */
function single(query: Query, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw badRequest([{ field: name, problem: 'must be given once, as plain text' }]);
  return value;
}

function onlyKnown(query: Query, known: readonly string[]): void {
  const unknown = Object.keys(query).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    throw badRequest(
      unknown.map((k) => ({ field: k.slice(0, 64), problem: `is not a known parameter (known: ${known.join(', ')})` })),
    );
  }
}

function filterFrom(query: Query): TripleFilter {
  const filter: TripleFilter = {};
  for (const name of ['subject', 'verb', 'object'] as const) {
    const value = single(query, name);
    if (value === undefined) continue;
    const problem = textProblem(value, tripleLimits[name]);
    if (problem) throw badRequest([{ field: name, problem }]);
    filter[name] = value;
  }
  return filter;
}

export interface RecallParams {
  filter: TripleFilter;
  minConfidence?: number;
  limit: number;
  cursor?: string;
}

/**
 * Validates `GET /v1/memory/triples?subject=&verb=&object=&min_confidence=&limit=&cursor=`.
 * `limit` defaults to, and is capped at, `maxPage`.
 */
export function parseRecallQuery(query: Query, opts: { maxPage: number }): RecallParams {
  onlyKnown(query, ['subject', 'verb', 'object', 'min_confidence', 'limit', 'cursor']);
  const filter = filterFrom(query);
  const out: RecallParams = { filter, limit: opts.maxPage };
  const min = single(query, 'min_confidence');
  if (min !== undefined) {
    const n = Number(min);
    if (min.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
      throw badRequest([{ field: 'min_confidence', problem: 'must be a number between 0 and 1' }]);
    }
    out.minConfidence = n;
  }
  const limit = single(query, 'limit');
  if (limit !== undefined) {
    if (!/^\d{1,9}$/.test(limit) || Number(limit) < 1) {
      throw badRequest([
        { field: 'limit', problem: `must be a whole number from 1 (at most ${opts.maxPage} are returned)` },
      ]);
    }
    out.limit = Math.min(Number(limit), opts.maxPage);
  }
  const cursor = single(query, 'cursor');
  if (cursor !== undefined) out.cursor = cursor;
  return out;
}

/** Validates `DELETE /v1/memory/triples?subject=&verb=&object=`: at least one filter. */
export function parseForgetTriplesQuery(query: Query): TripleFilter {
  onlyKnown(query, ['subject', 'verb', 'object']);
  const filter = filterFrom(query);
  if (Object.keys(filter).length === 0) {
    throw badRequest([
      {
        field: 'subject, verb, object',
        problem: 'give at least one; DELETE /v1/memory forgets everything',
      },
    ]);
  }
  return filter;
}

/** Validates `DELETE /v1/memory[?subject=]`: forget one subject, or everything. */
export function parseForgetQuery(query: Query): TripleFilter {
  onlyKnown(query, ['subject']);
  return filterFrom(query);
}
