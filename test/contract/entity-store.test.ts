import { hashKey, KeyStore, type Principal } from '../../src/auth/key-store.js';
import { migrate } from '../../src/db/migrate.js';
import { createPgPool } from '../../src/lib/postgres.js';
import { PgEntityStore } from '../../src/memory/pg-entity-store.js';
import { testConfig } from '../helpers/env.js';
import { runEntityStoreContract } from './entity-store.contract.js';

runEntityStoreContract('postgres', async () => {
  const t = await testConfig();
  const pool = createPgPool(t.config.DATABASE_URL, { name: 'test', schema: t.config.DATABASE_SCHEMA, max: 12 });
  await migrate(pool, t.config.DATABASE_SCHEMA);
  const keys = new KeyStore(pool);
  return {
    store: new PgEntityStore(pool),
    async tenant(name) {
      const { key } = await keys.create({ tenant: name, tier: 'free' });
      return ((await keys.lookup(hashKey(key))) as Principal).tenantId;
    },
    async storedOrder(tenantId) {
      // Postgres keeps microseconds; this is the order recall must page through.
      const { rows } = await pool.query<{ id: string }>(
        'SELECT id FROM triples WHERE tenant_id = $1 ORDER BY confidence DESC, updated_at DESC, id DESC',
        [tenantId],
      );
      return rows.map((r) => r.id);
    },
    async intact() {
      const { rows } = await pool.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_tables WHERE tablename IN ('triples', 'tenants')",
      );
      return rows[0]!.n >= 2;
    },
    async close() {
      await pool.end();
      await t.cleanup();
    },
  };
});
