import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { KeyStore } from '../../src/auth/key-store.js';
import { createPgPool } from '../../src/lib/postgres.js';
import { http, startTestCluster } from '../helpers/cluster.js';
import { testConfig } from '../helpers/env.js';

describe('entity memory through nginx and the real cluster', () => {
  let cluster: Awaited<ReturnType<typeof startTestCluster>>;
  let cleanup: () => Promise<void>;
  let pool: pg.Pool;
  let base: string;
  let dev: Record<string, string>;
  let other: Record<string, string>;

  before(async () => {
    const t = await testConfig({ MEMORY_MAX_PAGE: '10' });
    cleanup = t.cleanup;
    cluster = await startTestCluster(t.config, t.env);
    base = cluster.endpoint;
    dev = { authorization: `Bearer ${cluster.devKey.key}` };
    pool = createPgPool(t.config.DATABASE_URL, { name: 'test', schema: t.config.DATABASE_SCHEMA, max: 1 });
    other = { authorization: `Bearer ${(await new KeyStore(pool).create({ tenant: 'other', tier: 'free' })).key}` };
  });
  after(async () => {
    await cluster?.stop();
    await pool?.end();
    await cleanup?.();
  });

  it('stores, pages across both gateways, keeps tenants apart and forgets', async () => {
    const triples = Array.from({ length: 35 }, (_, i) => ({
      subject: 'hermana',
      verb: i === 0 ? 'vive_en' : 'recuerda',
      object: i === 0 ? 'Madrid' : `cosa ${i} — «${"'; DROP TABLE triples; --"}» 🤖`,
      confidence: i === 0 ? 0.9 : 0.5,
    }));
    const created = await http(`${base}/v1/memory/triples`, { json: { triples }, headers: dev });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.inserted, 35);

    // The cursor is stateless: any gateway continues a scan another one started.
    const servedBy = new Set<string>();
    const objects: string[] = [];
    let cursor: string | null = null;
    do {
      const q = new URLSearchParams({ subject: 'hermana', ...(cursor ? { cursor } : {}) });
      const page = await http(`${base}/v1/memory/triples?${q}`, { headers: dev });
      assert.equal(page.status, 200, page.text);
      servedBy.add(page.headers.get('x-served-by') ?? '');
      objects.push(...page.body.triples.map((t: { object: string }) => t.object));
      cursor = page.body.next_cursor;
    } while (cursor);
    assert.equal(objects.length, 35);
    assert.equal(new Set(objects).size, 35);
    assert.equal(objects[0], 'Madrid', 'highest confidence first');
    assert.deepEqual(new Set(objects), new Set(triples.map((t) => t.object)), 'text came back unchanged');
    assert.equal(servedBy.size, 2, [...servedBy].join(', '));

    const theirs = await http(`${base}/v1/memory/triples?subject=hermana`, { headers: other });
    assert.deepEqual(theirs.body.triples, []);
    const theirDelete = await http(`${base}/v1/memory`, { method: 'DELETE', headers: other });
    assert.deepEqual(theirDelete.body, { deleted: 0 });

    const forget = await http(`${base}/v1/memory/triples?subject=hermana&verb=recuerda`, {
      method: 'DELETE',
      headers: dev,
    });
    assert.deepEqual(forget.body, { deleted: 34 });
    const left = await http(`${base}/v1/memory/triples?subject=hermana`, { headers: dev });
    assert.deepEqual(
      left.body.triples.map((t: { verb: string; object: string }) => `${t.verb}:${t.object}`),
      ['vive_en:Madrid'],
    );
    const noKey = await http(`${base}/v1/memory/triples`);
    assert.equal(noKey.status, 401);
  });

  it('extracts facts from text with the nlp skill’s triples task and stores them', async () => {
    const nlp = await http(`${base}/v1/skills/nlp`, { headers: dev });
    assert.equal(nlp.status, 200, nlp.text);
    const text = 'My sister Maria lives in Madrid. Maria works at the city hospital.';
    const res = await http(`${base}/v1/memory/extract`, { json: { text }, headers: dev });
    assert.ok(nlp.body.tasks.includes('triples'));
    assert.equal(res.status, 200, res.text);
    assert.match(res.body.model, /\S/);
    assert.ok(res.body.triples.length > 0, res.text);
    for (const fact of res.body.triples) {
      assert.equal(fact.source, 'extract:nlp');
      assert.ok(fact.confidence >= 0 && fact.confidence <= 1);
      const q = new URLSearchParams({ subject: fact.subject, verb: fact.verb, object: fact.object });
      const back = await http(`${base}/v1/memory/triples?${q}`, { headers: dev });
      assert.equal(back.body.triples.length, 1, back.text);
      assert.equal(back.body.triples[0].id, fact.id);
      const hidden = await http(`${base}/v1/memory/triples?${q}`, { headers: other });
      assert.deepEqual(hidden.body.triples, []);
    }
    const facts = res.body.triples.map((f: { subject: string; verb: string; object: string }) =>
      `${f.subject} ${f.verb} ${f.object}`.toLowerCase(),
    );
    assert.ok(
      facts.some((f: string) => f.includes('madrid')),
      facts.join('; '),
    );
  });
});
