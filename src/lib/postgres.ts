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

/** How a write transaction ended when it did not commit for sure (the 503's `details.stored`). */
export type WriteUncertainty = false | 'unknown';

/** Raised by {@link writeTransaction}: the write failed, and whether anything may be stored. */
export class WriteFailed extends Error {
  override name = 'WriteFailed';
  constructor(
    /** `false`: rolled back, nothing stored; `unknown`: COMMIT was sent but not confirmed. */
    readonly stored: WriteUncertainty,
    /** The driver's error, or undefined when the deadline passed first. */
    override readonly cause: unknown,
  ) {
    super(stored === false ? 'the write was rolled back' : 'the commit was not confirmed');
  }
}

/** Cuts a client's connection at once (a timed-out write): the server rolls back what it holds. */
function discard(client: pg.PoolClient, why: Error): void {
  client.release(why);
  // release(err) ends the connection politely, which waits for a hung server; destroying the
  // socket frees it now and fails the client's pending query.
  (client as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.();
}

/**
 * Runs `work` in one transaction that commits within `timeoutMs` or tells exactly what happened:
 * - Postgres bounds each statement itself (`statement_timeout`, below the deadline), so a slow
 *   but living database aborts the transaction and the answer is a definite "not stored";
 * - past the deadline before COMMIT was sent, the connection is cut and nothing is committed:
 *   the server rolls back an open transaction when its client goes (even a frozen server, once
 *   it runs again, executes what it had received and then rolls back), so again "not stored";
 * - only when COMMIT was sent and its answer did not come is the outcome unknown, and it says so
 *   (retry with the same Idempotency-Key).
 * Failures are {@link WriteFailed}; the caller maps them to its errors.
 */
export async function writeTransaction<T>(
  pool: pg.Pool,
  timeoutMs: number,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  let phase: 'open' | 'committing' | 'done' = 'open';
  let client: pg.PoolClient | undefined;
  let expired = false;
  let timer: NodeJS.Timeout | undefined;
  const statementMs = Math.max(100, Math.floor(timeoutMs * 0.7));
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      expired = true;
      if (client) discard(client, new Error('write deadline passed'));
      reject(new WriteFailed(phase === 'committing' ? 'unknown' : false, undefined));
    }, timeoutMs);
  });
  const run = async (): Promise<T> => {
    let c: pg.PoolClient;
    try {
      c = await pool.connect();
    } catch (err) {
      throw new WriteFailed(false, err);
    }
    // A checked-out client has no error listener; a connection cut under it must not crash us.
    const ignore = () => undefined;
    c.on('error', ignore);
    const release = () => {
      c.off('error', ignore);
      c.release();
    };
    if (expired) {
      discard(c, new Error('write deadline passed'));
      throw new WriteFailed(false, undefined);
    }
    client = c;
    try {
      // One round trip; the value is an integer computed here, not input.
      await c.query(`BEGIN; SET LOCAL statement_timeout = ${statementMs}`);
      const result = await work(c);
      if (expired) throw new WriteFailed(false, undefined);
      phase = 'committing';
      await c.query('COMMIT');
      phase = 'done';
      release();
      return result;
    } catch (err) {
      if (expired)
        throw err instanceof WriteFailed ? err : new WriteFailed(phase === 'committing' ? 'unknown' : false, err);
      // A DatabaseError is the server's answer; anything else means the connection failed.
      const connectionLost = !(err instanceof pg.DatabaseError);
      if (phase === 'committing') {
        // The server answered the COMMIT with an error (it rolled back), or the connection went.
        discard(c, err as Error);
        throw new WriteFailed(connectionLost ? 'unknown' : false, err);
      }
      if (connectionLost) discard(c, err as Error);
      else await c.query('ROLLBACK').then(release, (e: Error) => discard(c, e));
      throw new WriteFailed(false, err);
    }
  };
  const running = run();
  running.catch(() => undefined);
  try {
    return await Promise.race([running, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
