import { createHash } from 'node:crypto';
import type pg from 'pg';
import { isPgRetryable, pgToAppError } from '../db/pg-errors.js';
import { AppError } from '../errors/index.js';
import { WriteFailed, writeTransaction } from '../lib/postgres.js';
import { combineDuplicates, tripleKey } from './combine.js';
import type {
  AssertedTriple,
  EntityStore,
  IdempotentWrite,
  WriteAnswer,
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

/**
 * A failed write as the API answers it. An outage says whether anything was stored: `false`
 * (rolled back; safe to retry) or `unknown` (the commit was not confirmed; retry with the same
 * Idempotency-Key, which returns the first answer if it was stored and writes once if not).
 */
function writeError(err: WriteFailed): AppError {
  if (err.cause instanceof AppError) return err.cause;
  const mapped = err.cause === undefined ? undefined : pgToAppError(err.cause, constraintFields);
  if (mapped && mapped.code !== 'DATABASE_UNAVAILABLE') return mapped;
  const message =
    err.stored === false
      ? 'the database did not complete the write; nothing was stored'
      : 'the database did not confirm the write; it may or may not be stored: retry with the same Idempotency-Key';
  return new AppError('DATABASE_UNAVAILABLE', message, { stored: err.stored }, { cause: err.cause, retryAfterS: 1 });
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

export interface PgEntityStoreOptions {
  /** End-to-end bound of one write (MEMORY_WRITE_TIMEOUT_MS); see writeTransaction. */
  writeTimeoutMs?: number;
  /** How long an idempotency key's answer is kept (IDEMPOTENCY_RETENTION_S). */
  idempotencyRetentionS?: number;
}

/** {@link EntityStore} on Postgres. Every statement is parameterised and scoped by tenant. */
export class PgEntityStore implements EntityStore {
  private readonly writeTimeoutMs: number;
  private readonly retentionS: number;

  constructor(
    private readonly pool: pg.Pool,
    opts: PgEntityStoreOptions = {},
  ) {
    this.writeTimeoutMs = opts.writeTimeoutMs ?? 3_000;
    this.retentionS = opts.idempotencyRetentionS ?? 86_400;
  }

  async assert(tenantId: string, triples: readonly TripleInput[]): Promise<AssertedTriple[]> {
    if (triples.length === 0) return [];
    return this.write((client) => this.upsert(client, tenantId, triples));
  }

  async assertOnce<R>(
    tenantId: string,
    triples: readonly TripleInput[],
    write: IdempotentWrite<R>,
  ): Promise<WriteAnswer<R>> {
    const hash = createHash('sha256').update(write.request).digest();
    return this.write(async (client) => {
      // Expired: as if never used. Then claim the key; a concurrent first use holds its row lock
      // until it commits (then this one sees its answer) or rolls back (then this one claims it).
      await client.query(
        `DELETE FROM idempotency_keys
          WHERE tenant_id = $1 AND key = $2 AND created_at < now() - $3 * interval '1 second'`,
        [tenantId, write.key, this.retentionS],
      );
      const claimed = await client.query(
        `INSERT INTO idempotency_keys (tenant_id, key, request_hash) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, key) DO NOTHING`,
        [tenantId, write.key, hash],
      );
      if (claimed.rowCount === 0) {
        const { rows } = await client.query<{ request_hash: Buffer; status: number | null; response: R | null }>(
          'SELECT request_hash, status, response FROM idempotency_keys WHERE tenant_id = $1 AND key = $2',
          [tenantId, write.key],
        );
        const row = rows[0];
        if (!row || !row.request_hash.equals(hash) || row.status === null) {
          throw new AppError('IDEMPOTENCY_KEY_REUSED', undefined, { header: 'Idempotency-Key' });
        }
        return { status: row.status, body: row.response as R, replayed: true };
      }
      const asserted = triples.length === 0 ? [] : await this.upsert(client, tenantId, triples);
      const { status, body } = write.respond(asserted);
      await client.query('UPDATE idempotency_keys SET status = $3, response = $4 WHERE tenant_id = $1 AND key = $2', [
        tenantId,
        write.key,
        status,
        JSON.stringify(body),
      ]);
      return { status, body, replayed: false };
    });
  }

  /** Deletes idempotency keys past their retention; returns how many. */
  async sweepIdempotencyKeys(): Promise<number> {
    const result = await this.query(
      `DELETE FROM idempotency_keys WHERE created_at < now() - $1 * interval '1 second'`,
      [this.retentionS],
    );
    return result.rowCount ?? 0;
  }

  /** One write transaction (see writeTransaction), tried again once after a deadlock. */
  private async write<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await writeTransaction(this.pool, this.writeTimeoutMs, work);
      } catch (err) {
        if (err instanceof WriteFailed) {
          if (attempt < MAX_ATTEMPTS && err.stored === false && isPgRetryable(err.cause)) continue;
          throw writeError(err);
        }
        throw pgToAppError(err, constraintFields);
      }
    }
  }

  private async upsert(
    client: pg.PoolClient,
    tenantId: string,
    triples: readonly TripleInput[],
  ): Promise<AssertedTriple[]> {
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
    const { rows } = await client.query<Row & { inserted: boolean }>(assertSql, values);
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
