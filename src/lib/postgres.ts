import pg from 'pg';

/** A pg pool whose connects and statements are bounded, so no request waits on a dead Postgres. */
export function createPgPool(url: string, opts: { name: string; schema?: string; max?: number }): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    application_name: opts.name,
    max: opts.max ?? 10,
    connectionTimeoutMillis: 2_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: 5_000,
    query_timeout: 6_000,
    // Every unqualified table name resolves in skillserve's own schema.
    ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
  });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  return pool;
}
