/** A fact to assert: "hermana — vive_en — Madrid" with a confidence in [0, 1]. */
export interface TripleInput {
  subject: string;
  verb: string;
  object: string;
  confidence: number;
  /** Where the assertion comes from, e.g. "api" or "extract:nlp". */
  source: string;
}

/** A stored fact. One row per (tenant, subject, verb, object). */
export interface StoredTriple {
  /** Stable id (a bigint, as a string). */
  id: string;
  subject: string;
  verb: string;
  object: string;
  /** Combined evidence of every assertion: 1 − Π(1 − cᵢ). */
  confidence: number;
  /** Source of the latest assertion. */
  source: string;
  /** How many assertions were combined into this row. */
  assertions: number;
  createdAt: Date;
  updatedAt: Date;
}

/** The result of asserting one distinct triple. */
export interface AssertedTriple extends StoredTriple {
  /** True when the row is new; false when the assertion was combined into an existing one. */
  inserted: boolean;
}

/** Exact-match filters; any combination, all optional. */
export interface TripleFilter {
  subject?: string;
  verb?: string;
  object?: string;
}

/**
 * A position in the recall order (confidence DESC, updated_at DESC, id DESC). `updatedAtUs` is
 * microseconds since the epoch as a decimal string: Postgres keeps microseconds, a JS Date only
 * milliseconds, and a lossy position would skip or repeat rows.
 */
export interface RecallPosition {
  confidence: number;
  updatedAtUs: string;
  id: string;
}

export interface RecallQuery extends TripleFilter {
  minConfidence?: number;
  limit: number;
  /** Continue after this position (exclusive). */
  after?: RecallPosition;
}

export interface RecallPage {
  triples: StoredTriple[];
  /** Position of the last triple when more may follow; absent on the last page. */
  next?: RecallPosition;
}

/** A write made at most once per Idempotency-Key, and the answer it gave, kept with it. */
export interface IdempotentWrite<R> {
  key: string;
  /** The request in a canonical form (route and body): a key reused for another request is a 409. */
  request: string;
  /** The answer to store with the key, from what was asserted. */
  respond(asserted: AssertedTriple[]): { status: number; body: R };
}

/** The answer of an idempotent write: made now, or replayed from the key's first use. */
export interface WriteAnswer<R> {
  status: number;
  body: R;
  replayed: boolean;
}

/**
 * Per-tenant fact memory. Every method is scoped by `tenantId`, which comes from the caller's
 * API key, never from the request; failures are AppErrors (DATABASE_UNAVAILABLE, BAD_REQUEST).
 */
export interface EntityStore {
  /**
   * Asserts facts atomically: all are stored or none is. Repeats of one triple (in the request
   * or already stored) combine into one row: confidence 1 − (1 − c₁)(1 − c₂), updated time moves.
   * Returns one entry per distinct triple, in the order each first appears in `triples`.
   */
  assert(tenantId: string, triples: readonly TripleInput[]): Promise<AssertedTriple[]>;
  /**
   * {@link assert} at most once per `write.key` for the tenant: the first call writes and stores
   * its answer in the same transaction; later calls with the key and the same request get that
   * answer (`replayed`), with another request IDEMPOTENCY_KEY_REUSED.
   */
  assertOnce<R>(tenantId: string, triples: readonly TripleInput[], write: IdempotentWrite<R>): Promise<WriteAnswer<R>>;
  /**
   * Facts matching `query`, best first: confidence, then most recently updated, then newest id.
   * Paging with `after` = the previous page's `next` never returns a row twice and returns every
   * row that existed at the start and was not modified or deleted during the scan: a re-asserted
   * row only moves towards the front (its confidence cannot fall, its update time cannot go
   * back), so it may be passed over but never met again; new rows appear if they sort after the
   * position reached.
   */
  recall(tenantId: string, query: RecallQuery): Promise<RecallPage>;
  /** Deletes the facts matching `filter` (every fact of the tenant when it is empty); returns how many. */
  forget(tenantId: string, filter: TripleFilter): Promise<number>;
}
