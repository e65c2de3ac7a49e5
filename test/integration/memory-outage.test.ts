import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { http, type HttpResult } from '../helpers/cluster.js';
import { eventually, testConfig } from '../helpers/env.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { type PostgresInstance, startPostgresInstance } from '../helpers/postgres-instance.js';

const BATCH = 100;

/**
 * Postgres failing under a running gateway. The database is a private instance started for this
 * file (never the machine's, which other tests use), so it can be stopped, frozen and restarted.
 */
describe('entity memory when Postgres fails', () => {
  let pgi: PostgresInstance;
  let gw: TestGateway;
  let cleanup: () => Promise<void>;
  let auth: Record<string, string>;
  let batch = 0;
  const triples = (subject: string) =>
    Array.from({ length: BATCH }, (_, i) => ({ subject, verb: 'n', object: String(i) }));
  const post = (subject: string) =>
    http(`${gw.url}/v1/memory/triples`, { json: { triples: triples(subject) }, headers: auth });
  const unavailable = (res: HttpResult, what: string) => {
    assert.equal(res.status, 503, `${what}: ${res.text}`);
    assert.equal(res.body.error.code, 'DATABASE_UNAVAILABLE', `${what}: ${res.text}`);
    assert.ok(
      !/ECONN|terminat|timeout|SQL|INSERT|SELECT|postgres|pg_/i.test(res.body.error.message),
      `${what}: no driver text in "${res.body.error.message}"`,
    );
    assert.ok(res.headers.get('retry-after'), `${what}: Retry-After`);
  };

  /** Rows per batch subject, straight from the database. */
  async function counts(): Promise<Map<string, number>> {
    const { rows } = await gw.pool.query<{ subject: string; n: number }>(
      "SELECT subject, count(*)::int AS n FROM triples WHERE subject LIKE 'batch-%' GROUP BY subject",
    );
    return new Map(rows.map((r) => [r.subject, r.n]));
  }

  /**
   * Writers posting 100-triple batches until `until()` says stop; every answer is recorded. The
   * fetch helper aborts after 30 s, so a request that hung would fail the test: each answer came
   * within that bound.
   */
  async function writers(n: number, until: () => boolean) {
    const results: { subject: string; status: number; code?: string }[] = [];
    await Promise.all(
      Array.from({ length: n }, async () => {
        while (!until()) {
          const subject = `batch-${++batch}`;
          const res = await post(subject);
          results.push({ subject, status: res.status, code: res.body?.error?.code });
        }
      }),
    );
    return results;
  }

  before(async () => {
    pgi = await startPostgresInstance();
    const t = await testConfig({ DATABASE_URL: pgi.url, KEY_CACHE_TTL_MS: '200', MEMORY_MAX_BATCH: String(BATCH) });
    cleanup = t.cleanup;
    gw = await startTestGateway(t.config);
    auth = await gw.authFor('outage');
  });
  after(async () => {
    await pgi?.resume().catch(() => undefined);
    await gw?.close();
    await pgi?.destroy();
    await cleanup?.();
  });

  it('stopped mid-write: bounded 503 DATABASE_UNAVAILABLE, no partial batch, recovery after restart', async () => {
    const before = await post('before');
    assert.equal(before.status, 201, before.text);

    let stopped = false;
    let answersAfterStop = 0;
    const running = writers(3, () => stopped && answersAfterStop++ >= 6);
    // Stop while batches are in flight.
    await eventually(async () => assert.ok(batch >= 6), { intervalMs: 5 });
    await pgi.stop('immediate');
    stopped = true;
    const results = await running;

    const down = {
      recall: await http(`${gw.url}/v1/memory/triples?subject=before`, { headers: auth }),
      forget: await http(`${gw.url}/v1/memory?subject=before`, { method: 'DELETE', headers: auth }),
      write: await post('while-down'),
      unknownKey: await http(`${gw.url}/v1/memory/triples`, {
        headers: { authorization: `Bearer sks_${'Q'.repeat(43)}` },
      }),
    };
    for (const [what, res] of Object.entries(down)) unavailable(res, what);

    for (const r of results) {
      assert.ok(
        r.status === 201 || (r.status === 503 && r.code === 'DATABASE_UNAVAILABLE'),
        `${r.subject}: ${r.status} ${r.code}`,
      );
    }
    assert.ok(
      results.some((r) => r.status === 201),
      'some batches were written before the stop',
    );
    assert.ok(
      results.some((r) => r.status === 503),
      'some batches met the stopped database',
    );

    await pgi.start();
    const recovered = await eventually(async () => {
      const res = await post('after');
      assert.equal(res.status, 201, res.text);
      return res;
    });
    assert.equal(recovered.body.inserted, BATCH);

    const stored = await counts();
    for (const r of results) {
      const n = stored.get(r.subject) ?? 0;
      // A 503 may still have committed (the answer was lost with the connection): all or nothing.
      if (r.status === 201) assert.equal(n, BATCH, `${r.subject} was acknowledged`);
      else assert.ok(n === 0 || n === BATCH, `${r.subject}: ${n} rows, a partial write`);
    }
    for (const [subject, n] of stored) assert.equal(n, BATCH, subject);
    assert.equal((await counts()).has('batch-while-down'), false);
    const recall = await http(`${gw.url}/v1/memory/triples?subject=before&limit=5`, { headers: auth });
    assert.equal(recall.status, 200, recall.text);
    assert.equal(recall.body.triples.length, 5);
  });

  it('frozen (the host hangs): 503 within the pool’s timeouts, then recovery', async () => {
    await pgi.pause();
    try {
      // Connections stay open and silent: the connect timeout (new connections) or the query
      // timeout (pooled ones) must answer for the database.
      const [write, recall] = await Promise.all([
        post('frozen'),
        http(`${gw.url}/v1/memory/triples?subject=before`, { headers: auth }),
      ]);
      unavailable(write, 'write');
      unavailable(recall, 'recall');
    } finally {
      await pgi.resume();
    }
    await eventually(async () => {
      const res = await http(`${gw.url}/v1/memory/triples?subject=before&limit=1`, { headers: auth });
      assert.equal(res.status, 200, res.text);
    });
    assert.ok(!(await counts()).has('frozen') || (await counts()).get('frozen') === BATCH, 'all or nothing');
  });
});
