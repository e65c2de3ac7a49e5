import { createHash } from 'node:crypto';
import type pg from 'pg';
import { type Migration, migrations as all } from './migrations/index.js';

/** Arbitrary but fixed: every skillserve process takes the same advisory lock to migrate. */
const MIGRATION_LOCK = 0x5c115e7;

export class MigrationError extends Error {
  override name = 'MigrationError';
}

/** Identifiers cannot be bound as parameters; the schema name is validated by the config schema too. */
function quoteIdent(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new MigrationError(`invalid schema name "${name}"`);
  return `"${name}"`;
}

function checksum(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}

/**
 * Applies pending migrations under a Postgres advisory lock, so N gateways starting together
 * apply each migration once; each migration runs in its own transaction. A migration whose text
 * changed after it was applied stops start-up: shipped migrations are never edited.
 * Returns the ids it applied.
 */
export async function migrate(
  pool: pg.Pool,
  schema: string,
  migrations: readonly Migration[] = all,
): Promise<string[]> {
  const client = await pool.connect();
  const applied: string[] = [];
  try {
    // One lock per schema: separate schemas (e.g. parallel test runs) do not wait on each other.
    await client.query('SELECT pg_advisory_lock($1, hashtext($2))', [MIGRATION_LOCK, schema]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      id text PRIMARY KEY,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await client.query<{ id: string; checksum: string }>('SELECT id, checksum FROM schema_migrations');
    const done = new Map(rows.map((r) => [r.id, r.checksum]));
    for (const m of migrations) {
      const sum = checksum(m.sql);
      const previous = done.get(m.id);
      if (previous !== undefined) {
        if (previous !== sum) {
          throw new MigrationError(`migration ${m.id} was edited after it was applied; add a new migration instead`);
        }
        continue;
      }
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (id, checksum) VALUES ($1, $2)', [m.id, sum]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new MigrationError(`migration ${m.id} failed: ${(err as Error).message}`);
      }
      applied.push(m.id);
    }
    return applied;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [MIGRATION_LOCK, schema]).catch(() => undefined);
    client.release();
  }
}
