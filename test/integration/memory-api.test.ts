import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Config } from '../../src/config/index.js';
import type { BackendItem, BackendResult, SkillBackend } from '../../src/skills/backend.js';
import { http, type HttpResult } from '../helpers/cluster.js';
import { testConfig } from '../helpers/env.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

/**
 * Stands in for the nlp skill's `triples` task, which is being written on another branch; it sits
 * at the SkillBackend interface, so extraction still takes the real path: queue, dispatcher,
 * gRPC, mapping, store. It answers in the shape that task will: `{ task, triples: [...] }`.
 */
function tripleBackend(): SkillBackend {
  return {
    describe: () => ({
      backend: 'test',
      model: 'pattern-triples@0',
      tasks: ['triples'],
      defaultTask: 'triples',
      deterministic: true,
    }),
    state: () => 'READY',
    load: async () => undefined,
    unload: async () => undefined,
    async inferBatch(items: readonly BackendItem[]): Promise<BackendResult[]> {
      return items.map((item) => {
        const text = item.text ?? '';
        if (text.includes('MALFORMED')) return { ok: true, output: { json: { task: 'triples', facts: 'none' } } };
        const triples = text
          .split('.')
          .map((s) => /^\s*(.+?) (lives in|works at|likes) (.+?)\s*$/.exec(s))
          .filter((m) => m !== null)
          .map((m) => ({ subject: m[1], verb: m[2]!.replace(' ', '_'), object: m[3], confidence: 0.8 }));
        return { ok: true, output: { json: { task: 'triples', triples } } };
      });
    },
  };
}

describe('entity memory API (in-process gateway, real Postgres, Redis and queue path)', () => {
  let config: Config;
  let cleanup: () => Promise<void>;
  let gw: TestGateway;
  let authA: Record<string, string>;
  let authB: Record<string, string>;
  const url = (path: string, query: Record<string, string | string[]> = {}) => {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) for (const x of [v].flat()) qs.append(k, x);
    const s = qs.toString();
    return `${gw.url}${path}${s ? `?${s}` : ''}`;
  };
  const post = (body: unknown, auth = authA) => http(url('/v1/memory/triples'), { json: body, headers: auth });
  const get = (query: Record<string, string | string[]> = {}, auth = authA) =>
    http(url('/v1/memory/triples', query), { headers: auth });
  const del = (path: string, query: Record<string, string> = {}, auth = authA) =>
    http(url(path, query), { method: 'DELETE', headers: auth });
  const badRequest = (res: HttpResult, field: string | RegExp) => {
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.error.code, 'BAD_REQUEST', res.text);
    if (typeof field === 'string') assert.equal(res.body.error.details.field, field, res.text);
    else assert.match(res.body.error.details.field, field, res.text);
    assert.ok(res.body.error.message.startsWith(`${res.body.error.details.field}: `), res.text);
  };

  before(async () => {
    const t = await testConfig({
      MEMORY_MAX_BATCH: '50',
      MEMORY_MAX_PAGE: '20',
      MEMORY_BODY_LIMIT_BYTES: '65536',
      MEMORY_EXTRACT_SKILL: 'memtest',
    });
    config = t.config;
    cleanup = t.cleanup;
    gw = await startTestGateway(config, { skills: [{ name: 'memtest', backend: tripleBackend() }] });
    authA = await gw.authFor('tenant-a');
    authB = await gw.authFor('tenant-b');
  });
  after(async () => {
    await gw?.close();
    await cleanup?.();
  });

  it('asserts one triple, combines a repeat and recalls it', async () => {
    const first = await post({ subject: 'hermana', verb: 'vive_en', object: 'Madrid', confidence: 0.9 });
    assert.equal(first.status, 201, first.text);
    assert.equal(first.body.inserted, 1);
    const t = first.body.triples[0];
    assert.deepEqual(
      { ...t, id: undefined, created_at: undefined, updated_at: undefined },
      {
        id: undefined,
        subject: 'hermana',
        verb: 'vive_en',
        object: 'Madrid',
        confidence: 0.9,
        source: 'api',
        assertions: 1,
        created_at: undefined,
        updated_at: undefined,
      },
    );
    const again = await post({
      subject: 'hermana',
      verb: 'vive_en',
      object: 'Madrid',
      confidence: 0.5,
      source: 'chat',
    });
    assert.equal(again.status, 200, 'nothing new: 200');
    assert.equal(again.body.combined, 1);
    assert.ok(Math.abs(again.body.triples[0].confidence - 0.95) < 1e-12);
    const recalled = await get({ subject: 'hermana' });
    assert.equal(recalled.status, 200, recalled.text);
    assert.equal(recalled.body.triples.length, 1);
    assert.equal(recalled.body.triples[0].source, 'chat');
    assert.equal(recalled.body.next_cursor, null);
  });

  it('bulk-inserts many triples in one request, folding repeats', async () => {
    const triples = Array.from({ length: 30 }, (_, i) => ({ subject: 'bulk', verb: 'n', object: String(i % 25) }));
    const res = await post({ triples });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.inserted, 25);
    assert.equal(res.body.triples.length, 25);
    assert.equal(res.body.triples[0].assertions, 2);
    assert.equal(res.body.triples[0].confidence, 1, 'no confidence means certain');
  });

  it('rejects a whole bulk request when one item is bad, naming the item and field', async () => {
    const good = (i: number) => ({ subject: 'atomic-api', verb: 'n', object: String(i) });
    const cases: [unknown, string][] = [
      [{ ...good(0), confidence: 1.5 }, 'triples[3].confidence'],
      [{ ...good(0), confidence: '0.5' }, 'triples[3].confidence'],
      [{ verb: 'n', object: 'x' }, 'triples[3].subject'],
      [{ ...good(0), subject: '' }, 'triples[3].subject'],
      [{ ...good(0), subject: '   ' }, 'triples[3].subject'],
      [{ ...good(0), verb: 'v'.repeat(129) }, 'triples[3].verb'],
      [{ ...good(0), object: '🙂'.repeat(513) }, 'triples[3].object'],
      [{ ...good(0), source: 's'.repeat(129) }, 'triples[3].source'],
      [{ ...good(0), object: 'nul\u0000byte' }, 'triples[3].object'],
      [{ ...good(0), object: 'lone \ud800 surrogate' }, 'triples[3].object'],
      [{ ...good(0), tenant_id: 'someone-else' }, 'triples[3].tenant_id'],
      ['just a string', 'triples[3]'],
    ];
    for (const [bad, field] of cases) {
      const triples = [good(1), good(2), good(3), bad, good(4)];
      badRequest(await post({ triples }), field);
    }
    assert.deepEqual((await get({ subject: 'atomic-api' })).body.triples, [], 'nothing was written');
  });

  it('validates the body shape, batch size and body size', async () => {
    badRequest(await post([{ subject: 'a', verb: 'b', object: 'c' }]), '(body)');
    badRequest(await post({ triples: {} }), 'triples');
    badRequest(await post({ triples: [] }), 'triples');
    badRequest(await post({ triples: [], extra: 1 }), 'extra');
    const big = Array.from({ length: 51 }, (_, i) => ({ subject: 's', verb: 'v', object: String(i) }));
    const tooMany = await post({ triples: big });
    badRequest(tooMany, 'triples');
    assert.match(tooMany.body.error.message, /at most 50/);
    const huge = await post({ triples: [{ subject: 's', verb: 'v', object: 'x'.repeat(70_000) }] });
    assert.equal(huge.status, 413, huge.text);
    assert.equal(huge.body.error.code, 'PAYLOAD_TOO_LARGE');
    const notJson = await http(url('/v1/memory/triples'), {
      method: 'POST',
      body: 'subject=a',
      headers: { ...authA, 'content-type': 'text/plain' },
    });
    assert.equal(notJson.body.error.code, 'UNSUPPORTED_MEDIA_TYPE');
    const broken = await http(url('/v1/memory/triples'), {
      method: 'POST',
      body: '{"subject": ',
      headers: { ...authA, 'content-type': 'application/json' },
    });
    assert.equal(broken.body.error.code, 'INVALID_JSON');
  });

  it('validates recall parameters and caps the page size', async () => {
    badRequest(await get({ tenant: 'tenant-b' }), 'tenant');
    badRequest(await get({ subject: ['a', 'b'] }), 'subject');
    badRequest(await get({ subject: '' }), 'subject');
    badRequest(await get({ object: 'x'.repeat(513) }), 'object');
    for (const limit of ['0', '-1', 'ten', '1.5', '']) badRequest(await get({ limit }), 'limit');
    for (const min of ['2', '-0.1', 'abc', '', 'NaN']) badRequest(await get({ min_confidence: min }), 'min_confidence');
    const capped = await get({ limit: '1000' });
    assert.equal(capped.status, 200, capped.text);
    assert.equal(capped.body.limit, 20);
    assert.ok(capped.body.triples.length <= 20);
  });

  it('pages with an opaque cursor; a tampered or foreign cursor is a 400', async () => {
    await post({
      triples: Array.from({ length: 45 }, (_, i) => ({
        subject: 'pages',
        verb: 'n',
        object: String(i),
        confidence: (i % 5) / 5,
      })),
    });
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const res = await get({ subject: 'pages', limit: '10', ...(cursor ? { cursor } : {}) });
      assert.equal(res.status, 200, res.text);
      seen.push(...res.body.triples.map((t: { object: string }) => t.object));
      cursor = res.body.next_cursor ?? undefined;
      pages++;
    } while (cursor);
    assert.equal(pages, 5);
    assert.equal(new Set(seen).size, 45);
    const first = await get({ subject: 'pages', limit: '10' });
    const good = first.body.next_cursor as string;
    const decoded = JSON.parse(Buffer.from(good, 'base64url').toString());
    const forge = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    for (const cursor of [
      'not a cursor!',
      'AAAA',
      forge({ ...decoded, c: 7 }),
      forge({ ...decoded, u: '1; DROP TABLE triples' }),
      forge({ ...decoded, i: '-1' }),
      forge({ ...decoded, v: 2 }),
      forge([1, 2, 3]),
      good.slice(0, -3),
    ]) {
      badRequest(await get({ subject: 'pages', limit: '10', cursor }), 'cursor');
    }
    // A well-formed position, however odd, is only a place to start from: never a 500.
    for (const u of ['99999999999999999', '-99999999999999999', '0']) {
      const odd = await get({
        subject: 'pages',
        limit: '10',
        cursor: forge({ ...decoded, u, i: '999999999999999999' }),
      });
      assert.equal(odd.status, 200, odd.text);
    }
    badRequest(await get({ subject: 'other', limit: '10', cursor: good }), 'cursor');
    badRequest(await get({ subject: 'pages', limit: '10', cursor: good }, authB), 'cursor');
  });

  it('keeps tenants apart: B can neither read nor delete A’s facts by any parameter', async () => {
    await post({ subject: 'private', verb: 'belongs_to', object: 'A', confidence: 0.6 });
    const params: Record<string, string>[] = [
      {},
      { subject: 'private' },
      { verb: 'belongs_to' },
      { object: 'A' },
      { subject: 'private', verb: 'belongs_to', object: 'A' },
      { min_confidence: '0' },
    ];
    for (const q of params) {
      const res = await get(q, authB);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body.triples, [], JSON.stringify(q));
      if (Object.keys(q).length > 0 && !('min_confidence' in q)) {
        const d = await del('/v1/memory/triples', q, authB);
        assert.deepEqual(d.body, { deleted: 0 }, JSON.stringify(q));
      }
    }
    assert.deepEqual((await del('/v1/memory', { subject: 'private' }, authB)).body, { deleted: 0 });
    assert.deepEqual((await del('/v1/memory', {}, authB)).body, { deleted: 0 });
    const still = await get({ subject: 'private' });
    assert.equal(still.body.triples.length, 1);
    assert.equal(still.body.triples[0].confidence, 0.6);
  });

  it('round-trips hostile text through JSON bodies and query strings byte for byte', async () => {
    const hostile = [
      "'; DROP TABLE triples; --",
      'a&b=c?d#e%20f+g',
      '👩‍👩‍👧‍👦 مرحبا \u202e שלום',
      'e\u0301 vs é',
      '\\x00 \\u0000 $1',
    ];
    for (const s of hostile) {
      const res = await post({ subject: s, verb: s.slice(0, 100), object: s });
      assert.equal(res.status, 201, res.text);
      const back = await get({ subject: s, verb: s.slice(0, 100), object: s });
      assert.equal(back.body.triples.length, 1, s);
      assert.ok(Buffer.from(back.body.triples[0].subject).equals(Buffer.from(s)), s);
      assert.ok(Buffer.from(back.body.triples[0].object).equals(Buffer.from(s)), s);
    }
  });

  it('forgets by filter, a subject, or everything, and refuses an unfiltered triple delete', async () => {
    const auth = await gw.authFor('forgetful');
    await post(
      {
        triples: [
          { subject: 'x', verb: 'a', object: '1' },
          { subject: 'x', verb: 'b', object: '2' },
          { subject: 'y', verb: 'a', object: '3' },
          { subject: 'z', verb: 'c', object: '4' },
        ],
      },
      auth,
    );
    badRequest(await del('/v1/memory/triples', {}, auth), 'subject, verb, object');
    badRequest(await del('/v1/memory', { verb: 'a' }, auth), 'verb');
    assert.deepEqual((await del('/v1/memory/triples', { verb: 'a', object: '3' }, auth)).body, { deleted: 1 });
    assert.deepEqual((await del('/v1/memory', { subject: 'x' }, auth)).body, { deleted: 2 });
    assert.deepEqual((await del('/v1/memory', {}, auth)).body, { deleted: 1 });
    assert.deepEqual((await get({}, auth)).body.triples, []);
  });

  it('needs an API key', async () => {
    const res = await http(url('/v1/memory/triples'));
    assert.equal(res.status, 401);
    assert.equal(res.body.error.code, 'UNAUTHORIZED');
  });

  it('extracts triples from text through the queue and stores them for the caller’s tenant', async () => {
    const res = await http(url('/v1/memory/extract'), {
      json: { text: 'Maria lives in Madrid. Maria works at the hospital. It rains.' },
      headers: authB,
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.model, 'pattern-triples@0');
    assert.deepEqual(
      res.body.triples.map((t: { subject: string; verb: string; object: string; source: string }) => [
        t.subject,
        t.verb,
        t.object,
        t.source,
      ]),
      [
        ['Maria', 'lives_in', 'Madrid', 'extract:memtest'],
        ['Maria', 'works_at', 'the hospital', 'extract:memtest'],
      ],
    );
    const recalled = await get({ subject: 'Maria' }, authB);
    assert.equal(recalled.body.triples.length, 2);
    assert.deepEqual((await get({ subject: 'Maria' })).body.triples, [], 'not visible to tenant A');
    const again = await http(url('/v1/memory/extract'), { json: { text: 'Maria lives in Madrid.' }, headers: authB });
    assert.equal(again.body.combined, 1);
    assert.ok(Math.abs(again.body.triples[0].confidence - 0.96) < 1e-12);
  });

  it('reports a skill answer without triples as SKILL_ERROR, and validates extract input', async () => {
    const bad = await http(url('/v1/memory/extract'), { json: { text: 'MALFORMED' }, headers: authA });
    assert.equal(bad.status, 502, bad.text);
    assert.equal(bad.body.error.code, 'SKILL_ERROR');
    badRequest(await http(url('/v1/memory/extract'), { json: { text: '' }, headers: authA }), 'text');
    badRequest(await http(url('/v1/memory/extract'), { json: { input: 'x' }, headers: authA }), /input|text/);
    const long = await http(url('/v1/memory/extract'), {
      json: { text: 'a'.repeat(config.MAX_INPUT_CHARS + 1) },
      headers: authA,
    });
    assert.equal(long.body.error.code, 'INPUT_TOO_LARGE');
  });
});
