import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashKey, KeyStore, keyPattern } from '../auth/key-store.js';
import type { Config } from '../config/index.js';
import { migrate } from '../db/migrate.js';
import { createPgPool } from '../lib/postgres.js';

/**
 * The local cluster's development key (tenant `dev`, tier premium). Created on first start and
 * kept in the run directory (mode 600) so later starts can show it again; a key that was revoked
 * or belongs to another database is replaced.
 */
export async function ensureDevKey(
  config: Config,
  runDir: string,
): Promise<{ key: string; file: string; created: boolean }> {
  const file = join(runDir, 'dev-key');
  const pool = createPgPool(config.DATABASE_URL, {
    name: 'skillserve-supervisor',
    schema: config.DATABASE_SCHEMA,
    max: 1,
  });
  try {
    await migrate(pool, config.DATABASE_SCHEMA);
    const store = new KeyStore(pool);
    let existing: string | undefined;
    try {
      existing = readFileSync(file, 'utf8').trim();
    } catch {
      existing = undefined;
    }
    if (existing && keyPattern.test(existing)) {
      const found = await store.lookup(hashKey(existing));
      if (found && found !== 'revoked') return { key: existing, file, created: false };
    }
    const { key } = await store.create({ tenant: 'dev', tier: 'premium', name: 'development key (skillserve up)' });
    writeFileSync(file, `${key}\n`, { mode: 0o600 });
    return { key, file, created: true };
  } finally {
    await pool.end();
  }
}
