import type { Tier } from '../../src/auth/key-store.js';
import { KeyStore } from '../../src/auth/key-store.js';
import type { Config } from '../../src/config/index.js';
import { migrate } from '../../src/db/migrate.js';
import { createPgPool } from '../../src/lib/postgres.js';

/** Creates API keys in a test's own schema; returns ready-made Authorization headers. */
export async function createKeys(
  config: Config,
  wanted: Record<string, { tenant: string; tier: Tier }>,
): Promise<Record<string, { authorization: string }>> {
  const pool = createPgPool(config.DATABASE_URL, { name: 'test-keys', schema: config.DATABASE_SCHEMA, max: 1 });
  try {
    await migrate(pool, config.DATABASE_SCHEMA);
    const store = new KeyStore(pool);
    const out: Record<string, { authorization: string }> = {};
    for (const [name, spec] of Object.entries(wanted)) {
      const { key } = await store.create(spec);
      out[name] = { authorization: `Bearer ${key}` };
    }
    return out;
  } finally {
    await pool.end();
  }
}
