import type pg from 'pg';
import { isPgRetryable, pgToAppError } from '../db/pg-errors.js';
import { combineDuplicates, tripleKey } from './combine.js';
import type {
  AssertedTriple,
  EntityStore,
  RecallPage,
  RecallQuery,
  StoredTriple,
  TripleFilter,
  TripleInput,
} from './entity-store.js';

/** The triples table's constraints, named in migration 002, and the API field each guards. */
const constraintFields: Readonly<Record<string, string>> = {
  triples_subject_length: 'subject',
  triples_verb_length: 'verb',
  triples_object_length: 'object',
  triples_confidence_range: 'confidence',
  triples_source_length: 'source',
};

/** Deadlocks cannot come from our own lock order (see assert), but a second attempt is cheap. */
const MAX_ATTEMPTS = 2;

// `id` stays bigint (pg hands int8 to JS as a string): an `id::text AS id` alias would make
// ORDER BY id sort as text, out of step with the keyset comparison on the bigint column.
const columns = `id, subject, verb, object, confidence, source, assertions, created_at, updated_at,
       (extract(epoch FROM updated_at) * 1000000)::bigint::text AS updated_us`;

/**
 * One upsert for a whole batch: the arrays are unnested in the order given, so every writer
 * locks rows in the same (sorted) order and two overlapping batches cannot deadlock. A repeat
 * combines its confidence into the row (1 − (1 − c₁)(1 − c₂), in the drift-free form of
 * combine.ts) and moves `updated_at` forward, never back: `now()` is the transaction's start, and
 * an older transaction committing later must not move the row backwards in the recall order
 * (that could repeat it in a running pagination).
 */
const assertSql = `
INSERT INTO triples AS t (tenant_id, subject, verb, object, confidence, source, assertions)
SELECT $1::uuid, u.subject, u.verb, u.object, u.confidence, u.source, u.assertions
  FROM unnest($2::text[], $3::text[], $4::text[], $5::float8[], $6::text[], $7::int[])
       WITH ORDINALITY AS u (subject, verb, object, confidence, source, assertions, ord)
 ORDER BY u.ord
ON CONFLICT (tenant_id, key_hash) DO UPDATE
   SET confidence = t.confidence + EXCLUDED.confidence * (1 - t.confidence),
       source = EXCLUDED.source,
       assertions = t.assertions + EXCLUDED.assertions,
       updated_at = GREATEST(t.updated_at, now())
RETURNING ${columns}, (xmax = 0) AS inserted`;

interface Row {
  id: string;
  subject: string;
  verb: string;
  object: string;
  confidence: number;
  source: string;
  assertions: number;
  created_at: Date;
  updated_at: Date;
  updated_us: string;
}

function toTriple(r: Row): StoredTriple {
  return {
    id: r.id,
    subject: r.subject,
    verb: r.verb,
    object: r.object,
    confidence: r.confidence,
    source: r.source,
    assertions: r.assertions,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/**
 * Builds a parameterised WHERE clause. Only fixed fragments are concatenated; every value
 * travels as a parameter ($n), so no text from a request ever becomes SQL.
 */
function whereClause(
  tenantId: string,
  filter: TripleFilter & { minConfidence?: number },
): { where: string; params: unknown[] } {
  const params: unknown[] = [tenantId];
  const conditions = ['tenant_id = $1'];
  const add = (fragment: (n: number) => string, value: unknown): number => {
    params.push(value);
    conditions.push(fragment(params.length));
    return params.length;
  };
  const s = filter.subject === undefined ? 0 : add((n) => `subject = $${n}`, filter.subject);
  const v = filter.verb === undefined ? 0 : add((n) => `verb = $${n}`, filter.verb);
  const o = filter.object === undefined ? 0 : add((n) => `object = $${n}`, filter.object);
  // All three given: one probe of the unique index instead of a scan of the subject's facts.
  if (s && v && o) conditions.push(`key_hash = triple_key($${s}, $${v}, $${o})`);
  if (filter.minConfidence !== undefined) add((n) => `confidence >= $${n}`, filter.minConfidence);
  return { where: conditions.join(' AND '), params };
}

/** The recall statement for `query`, exported so the benchmark can EXPLAIN exactly what runs. */
export function recallStatement(tenantId: string, query: RecallQuery): { text: string; values: unknown[] } {
  const { where, params } = whereClause(tenantId, query);
  let keyset = '';
  if (query.after) {
    const n = params.length;
    params.push(query.after.confidence, query.after.updatedAtUs, query.after.id);
    // Integer microseconds back into a timestamptz: exact (the product is computed in float8,
    // which holds integers exactly up to 2^53 µs, i.e. until the year 2255).
    keyset = ` AND (confidence, updated_at, id) < ($${n + 1}::float8, 'epoch'::timestamptz + $${n + 2}::bigint * interval '1 microsecond', $${n + 3}::bigint)`;
  }
  params.push(query.limit + 1);
  return {
    text: `SELECT ${columns} FROM triples WHERE ${where}${keyset}
            ORDER BY confidence DESC, updated_at DESC, id DESC LIMIT $${params.length}`,
    values: params,
  };
}

/** {@link EntityStore} on Postgres. Every statement is parameterised and scoped by tenant. */
export class PgEntityStore implements EntityStore {
  constructor(private readonly pool: Pick<pg.Pool, 'query'>) {}

  async assert(tenantId: string, triples: readonly TripleInput[]): Promise<AssertedTriple[]> {
    if (triples.length === 0) return [];
    const combined = combineDuplicates(triples);
    // A fixed lock order for every writer (code-unit order of the key).
    const sorted = [...combined].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const values = [
      tenantId,
      sorted.map((t) => t.subject),
      sorted.map((t) => t.verb),
      sorted.map((t) => t.object),
      sorted.map((t) => t.confidence),
      sorted.map((t) => t.source),
      sorted.map((t) => t.assertions),
    ];
    const rows = await this.run<Row & { inserted: boolean }>(assertSql, values);
    const byKey = new Map(rows.map((r) => [tripleKey(r), r]));
    return combined.map((t) => {
      const row = byKey.get(t.key);
      // One statement, one row per distinct key: a missing row would be a bug, not bad input.
      if (!row) throw pgToAppError(new Error('upsert returned fewer rows than it was given'));
      return { ...toTriple(row), inserted: row.inserted };
    });
  }

  async recall(tenantId: string, query: RecallQuery): Promise<RecallPage> {
    const { text, values } = recallStatement(tenantId, query);
    const rows = await this.run<Row>(text, values);
    const more = rows.length > query.limit;
    const page = more ? rows.slice(0, query.limit) : rows;
    const last = page.at(-1);
    return {
      triples: page.map(toTriple),
      ...(more && last ? { next: { confidence: last.confidence, updatedAtUs: last.updated_us, id: last.id } } : {}),
    };
  }

  async forget(tenantId: string, filter: TripleFilter): Promise<number> {
    const { where, params } = whereClause(tenantId, filter);
    const result = await this.query(`DELETE FROM triples WHERE ${where}`, params);
    return result.rowCount ?? 0;
  }

  private async run<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<R[]> {
    return (await this.query<R>(text, values)).rows;
  }

  private async query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.pool.query<R>(text, values);
      } catch (err) {
        if (attempt < MAX_ATTEMPTS && isPgRetryable(err)) continue;
        throw pgToAppError(err, constraintFields);
      }
    }
  }
}
