import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { http, type HttpResult } from '../helpers/cluster.js';
import { eventually, testConfig } from '../helpers/env.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { type PostgresInstance, startPostgresInstance } from '../helpers/postgres-instance.js';

const BATCH = 20;
const WRITE_TIMEOUT_MS = 1_500;

/**
 * A stalled Postgres under a running gateway: frozen (SIGSTOP: connections open, nothing
 * answers) or slow (a row lock held elsewhere). The database is a private instance of this file,
 * never the machine's.
 */
describe('when Postgres stalls', () => {
  let pgi: PostgresInstance;
  let gw: TestGateway;
  let cleanup: () => Promise<void>;
  let auth: Record<string, string>;

  before(async () => {
    pgi = await startPostgresInstance();
    const t = await testConfig({
      DATABASE_URL: pgi.url,
      KEY_CACHE_TTL_MS: '300',
      // Long, so that a request which waits for the database is plain to see next to one that does not.
      KEY_LOOKUP_TIMEOUT_MS: '4000',
      MEMORY_WRITE_TIMEOUT_MS: String(WRITE_TIMEOUT_MS),
      MEMORY_MAX_BATCH: String(BATCH),
    });
    cleanup = t.cleanup;
    gw = await startTestGateway(t.config);
    auth = await gw.authFor('stall');
  });
  after(async () => {
    await pgi?.resume().catch(() => undefined);
    await gw?.close();
    await pgi?.destroy();
    await cleanup?.();
  });

  it('checks a known key from the key cache without waiting; only an unknown key waits, bounded', async () => {
    const skills = (headers: Record<string, string>) => http(`${gw.url}/v1/skills`, { headers });
    assert.equal((await skills(auth)).status, 200);
    const unknown = { authorization: `Bearer sks_${'U'.repeat(43)}` };
    await pgi.pause();
    try {
      // Past the key cache's TTL: the cached answer is stale, and Postgres does not answer.
      await new Promise((r) => setTimeout(r, 500));
      const order: string[] = [];
      const waiting = skills(unknown).then((res) => {
        order.push('unknown');
        return res;
      });
      const known: HttpResult[] = [];
      for (let i = 0; i < 10; i++) {
        known.push(await skills(auth));
        order.push('known');
      }
      const refused = await waiting;
      for (const res of known) assert.equal(res.status, 200, res.text);
      assert.equal(refused.status, 503, refused.text);
      assert.equal(refused.body.error.code, 'DATABASE_UNAVAILABLE');
      assert.ok(refused.headers.get('retry-after'));
      assert.deepEqual(
        order,
        [...Array(10).fill('known'), 'unknown'],
        'every known key answered before the unknown one',
      );
    } finally {
      await pgi.resume();
    }
  });

  /** Rows and assertions of a subject, straight from the database. */
  async function stored(subject: string): Promise<{ rows: number; assertions: number }> {
    const { rows } = await gw.pool.query<{ rows: number; assertions: number }>(
      'SELECT count(*)::int AS rows, coalesce(sum(assertions), 0)::int AS assertions FROM triples WHERE subject = $1',
      [subject],
    );
    return rows[0]!;
  }

  const post = (subject: string, key: string) =>
    http(`${gw.url}/v1/memory/triples`, {
      json: { triples: Array.from({ length: BATCH }, (_, i) => ({ subject, verb: 'has', object: `item ${i}` })) },
      headers: { ...auth, 'idempotency-key': key },
    });

  it('answers each write as it was stored across a freeze, and a retry with its Idempotency-Key writes once', async () => {
    let frozen = false;
    const results: { subject: string; key: string; res: HttpResult }[] = [];
    let n = 0;
    const writer = async () => {
      while (!frozen || results.length < 12) {
        const subject = `stall-${++n}-${randomUUID()}`;
        const key = randomUUID();
        results.push({ subject, key, res: await post(subject, key) });
        if (results.length > 400) break;
      }
    };
    const writers = Promise.all([writer(), writer(), writer()]);
    await eventually(async () => assert.ok(results.length >= 6), { intervalMs: 5 });
    await pgi.pause();
    frozen = true;
    // Frozen for longer than a write may take: every write in flight meets its deadline.
    await new Promise((r) => setTimeout(r, WRITE_TIMEOUT_MS * 2));
    await pgi.resume();
    await writers;

    const failed = results.filter((r) => r.res.status !== 201);
    assert.ok(failed.length > 0, 'some writes met the freeze');
    for (const { subject, res } of results) {
      const { rows } = await stored(subject);
      if (res.status === 201) {
        assert.equal(rows, BATCH, `${subject}: acknowledged, so stored`);
        continue;
      }
      assert.equal(res.status, 503, res.text);
      assert.equal(res.body.error.code, 'DATABASE_UNAVAILABLE', res.text);
      const said = res.body.error.details?.stored;
      assert.ok(said === false || said === 'unknown', `the answer says whether it was stored: ${res.text}`);
      if (said === false) assert.equal(rows, 0, `${subject}: answered "not stored", and nothing is`);
      else assert.ok(rows === 0 || rows === BATCH, `${subject}: all or nothing`);
    }

    // The client retries every write it was not sure of, with the same key: each is then stored
    // exactly once (a second application would have made its assertions 2).
    for (const { subject, key } of failed) {
      const retry = await eventually(async () => {
        const res = await post(subject, key);
        assert.ok(res.status === 201 || res.status === 200, res.text);
        return res;
      });
      assert.equal(retry.body.triples.length, BATCH);
      assert.deepEqual(await stored(subject), { rows: BATCH, assertions: BATCH }, subject);
      const again = await post(subject, key);
      assert.equal(again.headers.get('idempotency-replayed'), 'true');
      assert.deepEqual(again.body, retry.body, 'a replay answers what the first write answered');
      assert.deepEqual(await stored(subject), { rows: BATCH, assertions: BATCH }, `${subject} after a replay`);
    }
    const reused = await post(`another-${randomUUID()}`, failed[0]!.key);
    assert.equal(reused.status, 409, reused.text);
    assert.equal(reused.body.error.code, 'IDEMPOTENCY_KEY_REUSED');
  });

  it('lets Postgres abort a write that runs too long (statement_timeout): a definite "not stored"', async () => {
    const subject = `locked-${randomUUID()}`;
    const first = await post(subject, randomUUID());
    assert.equal(first.status, 201, first.text);
    // Another session holds the rows: the upsert waits on their locks until the server gives up.
    const holder = await gw.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM triples WHERE subject = $1 FOR UPDATE', [subject]);
      const res = await post(subject, randomUUID());
      assert.equal(res.status, 503, res.text);
      assert.equal(res.body.error.code, 'DATABASE_UNAVAILABLE');
      assert.equal(res.body.error.details?.stored, false, res.text);
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    assert.deepEqual(await stored(subject), { rows: BATCH, assertions: BATCH }, 'the refused write left no trace');
  });
});
