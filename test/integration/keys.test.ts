import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { Authenticator } from '../../src/auth/authenticator.js';
import { hashKey, KeyStore, type Principal } from '../../src/auth/key-store.js';
import type { Config } from '../../src/config/index.js';
import { migrate, MigrationError } from '../../src/db/migrate.js';
import { migrations } from '../../src/db/migrations/index.js';
import type { AppError } from '../../src/errors/index.js';
import { createPgPool } from '../../src/lib/postgres.js';
import { cliPath } from '../helpers/cluster.js';
import { eventually, testConfig } from '../helpers/env.js';

describe('API keys and tenants in Postgres', () => {
  let config: Config;
  let env: NodeJS.ProcessEnv;
  let cleanup: () => Promise<void>;
  let pool: pg.Pool;
  let store: KeyStore;

  before(async () => {
    ({ config, env, cleanup } = await testConfig());
    pool = createPgPool(config.DATABASE_URL, { name: 'test', schema: config.DATABASE_SCHEMA });
    store = new KeyStore(pool);
  });
  after(async () => {
    await pool?.end();
    await cleanup?.();
  });

  it('N processes migrating at once apply each migration once', async () => {
    const pools = Array.from({ length: 5 }, () =>
      createPgPool(config.DATABASE_URL, { name: 'test', schema: config.DATABASE_SCHEMA, max: 1 }),
    );
    try {
      const results = await Promise.all(pools.map((p) => migrate(p, config.DATABASE_SCHEMA)));
      assert.deepEqual(
        results.flat(),
        migrations.map((m) => m.id),
      );
      const { rows } = await pool.query('SELECT id FROM schema_migrations');
      assert.equal(rows.length, migrations.length);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it('refuses a migration edited after it shipped', async () => {
    const edited = migrations.map((m, i) => (i === 0 ? { ...m, sql: `${m.sql}\n-- changed` } : m));
    await assert.rejects(migrate(pool, config.DATABASE_SCHEMA, edited), MigrationError);
  });

  it('stores only a hash, shows the key once, and resolves it to tenant and tier', async () => {
    const created = await store.create({ tenant: 'acme', tier: 'premium', name: 'ci' });
    assert.match(created.key, /^sks_[A-Za-z0-9_-]{43}$/);
    const { rows } = await pool.query('SELECT * FROM api_keys WHERE id = $1', [created.id]);
    assert.ok(!JSON.stringify(rows).includes(created.key.slice(12)), 'the secret part is not stored');
    const found = (await store.lookup(hashKey(created.key))) as Principal;
    assert.equal(found.tenant, 'acme');
    assert.equal(found.tier, 'premium');
    assert.equal(await store.lookup(hashKey(`${created.key.slice(0, -1)}x`)), undefined);
  });

  it('revokes by prefix, and the key stops working on a gateway within the cache TTL', async () => {
    const { key, prefix } = await store.create({ tenant: 'acme', tier: 'free' });
    const auth = new Authenticator({ keys: store, ttlMs: 200 });
    assert.equal((await auth.authenticate(`Bearer ${key}`)).tier, 'free');
    assert.equal(await store.revoke(prefix), 1);
    await eventually(async () => {
      await assert.rejects(auth.authenticate(`Bearer ${key}`), (e: AppError) => e.details?.reason === 'revoked');
    });
    assert.equal(await store.revoke(prefix), 0, 'revoking twice changes nothing');
  });

  it('answers missing, malformed and unknown keys with UNAUTHORIZED and a reason', async () => {
    const auth = new Authenticator({ keys: store, ttlMs: 1_000 });
    const reason = (header: string | undefined) =>
      auth.authenticate(header).then(
        () => 'ok',
        (e: AppError) => `${e.code}:${String(e.details?.reason)}`,
      );
    assert.equal(await reason(undefined), 'UNAUTHORIZED:missing');
    assert.equal(await reason('Basic abc'), 'UNAUTHORIZED:malformed');
    assert.equal(await reason("Bearer sks_' OR 1=1 --"), 'UNAUTHORIZED:malformed');
    assert.equal(await reason(`Bearer sks_${'b'.repeat(43)}`), 'UNAUTHORIZED:unknown');
  });

  it('keeps serving a known key from its last answer while the key store fails', async () => {
    const { key } = await store.create({ tenant: 'acme', tier: 'standard' });
    let failing = false;
    const flaky = {
      lookup: (hash: Buffer) => (failing ? Promise.reject(new Error('connection refused')) : store.lookup(hash)),
    };
    const auth = new Authenticator({ keys: flaky, ttlMs: 50 });
    assert.equal((await auth.authenticate(`Bearer ${key}`)).tenant, 'acme');
    failing = true;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await auth.authenticate(`Bearer ${key}`)).tenant, 'acme');
    const { key: never } = await store.create({ tenant: 'acme', tier: 'standard' });
    await assert.rejects(auth.authenticate(`Bearer ${never}`), (e: AppError) => e.code === 'DATABASE_UNAVAILABLE');
  });

  it('the CLI creates, lists and revokes keys', () => {
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', cliPath, 'keys', ...args], { env, encoding: 'utf8' });
    const created = cli('create', '--tenant', 'globex', '--tier', 'premium');
    assert.equal(created.status, 0, created.stderr);
    const key = /(sks_\S+)/.exec(created.stdout)?.[1];
    assert.ok(key);
    const listed = cli('list', '--tenant', 'globex');
    assert.match(listed.stdout, new RegExp(`globex\\s+premium\\s+${key.slice(0, 12)}.*active`));
    assert.ok(!listed.stdout.includes(key), 'list never shows a key');
    assert.equal(cli('revoke', key.slice(0, 12)).status, 0);
    assert.match(cli('list', '--tenant', 'globex').stdout, /revoked/);
    const bad = cli('create', '--tenant', 'Bad Name!');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--tenant needs a lower-case name/);
    assert.equal(cli('create', '--tenant', 'x', '--tier', 'gold').status, 2);
  });
});
