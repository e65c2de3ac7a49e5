import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AppError } from '../../src/errors/index.js';
import type { EntityStore, RecallPosition, StoredTriple, TripleInput } from '../../src/memory/entity-store.js';

/**
 * What every entity store (src/memory/entity-store.ts) must do, run against each implementation
 * (today: Postgres). An implementation supplies the store and the few things only it can tell.
 */
export interface EntityStoreUnderTest {
  store: EntityStore;
  /** The id of a new tenant named `name`. */
  tenant(name: string): Promise<string>;
  /** A tenant's fact ids in the recall order as the storage itself sorts them, at full precision. */
  storedOrder(tenantId: string): Promise<string[]>;
  /** Whether the storage is intact (hostile text was stored as text, never run). */
  intact(): Promise<boolean>;
  close(): Promise<void>;
}

const fact = (subject: string, verb: string, object: string, confidence = 0.5, source = 'test'): TripleInput => ({
  subject,
  verb,
  object,
  confidence,
  source,
});

/** Every page of a recall, following the cursor. */
async function scan(
  store: EntityStore,
  tenant: string,
  query: { subject?: string; limit: number },
  between: () => Promise<void> = async () => undefined,
): Promise<StoredTriple[]> {
  const out: StoredTriple[] = [];
  let after: RecallPosition | undefined;
  for (;;) {
    const page = await store.recall(tenant, { ...query, after });
    out.push(...page.triples);
    if (!page.next) return out;
    after = page.next;
    await between();
  }
}

export function runEntityStoreContract(name: string, factory: () => Promise<EntityStoreUnderTest>): void {
  describe(`entity store contract: ${name}`, () => {
    let sut: EntityStoreUnderTest;
    let store: EntityStore;
    let tenantA: string;
    let tenantB: string;

    before(async () => {
      sut = await factory();
      store = sut.store;
      tenantA = await sut.tenant('tenant-a');
      tenantB = await sut.tenant('tenant-b');
    });
    after(async () => {
      await sut?.close();
    });

    it('combines a repeated assertion into one row: 1 − (1 − c₁)(1 − c₂), updated time moves', async () => {
      const [first] = await store.assert(tenantA, [fact('hermana', 'vive_en', 'Madrid', 0.9, 'chat')]);
      assert.equal(first!.inserted, true);
      assert.equal(first!.confidence, 0.9);
      const [second] = await store.assert(tenantA, [fact('hermana', 'vive_en', 'Madrid', 0.5, 'profile')]);
      assert.equal(second!.inserted, false);
      assert.equal(second!.id, first!.id);
      assert.ok(Math.abs(second!.confidence - 0.95) < 1e-12, String(second!.confidence));
      assert.equal(second!.assertions, 2);
      assert.equal(second!.source, 'profile', 'the latest assertion names the source');
      assert.deepEqual(second!.createdAt, first!.createdAt);
      assert.ok(second!.updatedAt > first!.updatedAt, 'updated_at moved');
      const { triples } = await store.recall(tenantA, { subject: 'hermana', limit: 10 });
      assert.equal(triples.length, 1);
    });

    it('folds repeats within one bulk request, so ON CONFLICT never meets a row twice', async () => {
      const out = await store.assert(tenantA, [
        fact('bulk', 'is', 'repeated', 0.5),
        fact('bulk', 'is', 'other', 0.3),
        fact('bulk', 'is', 'repeated', 0.5),
        fact('bulk', 'is', 'repeated', 0.5),
      ]);
      assert.deepEqual(
        out.map((t) => [t.object, t.assertions]),
        [
          ['repeated', 3],
          ['other', 1],
        ],
      );
      assert.ok(Math.abs(out[0]!.confidence - 0.875) < 1e-12);
      const again = await store.assert(tenantA, [fact('bulk', 'is', 'repeated', 0)]);
      assert.equal(again[0]!.confidence, out[0]!.confidence, 'zero evidence changes nothing');
      const certain = await store.assert(tenantA, [
        fact('bulk', 'is', 'certain', 1),
        fact('bulk', 'is', 'certain', 0.2),
      ]);
      assert.equal(certain[0]!.confidence, 1);
    });

    it('concurrent overlapping bulk upserts neither deadlock nor lose an assertion', async () => {
      const base = Array.from({ length: 150 }, (_, i) => fact('race', 'has', `item-${i}`, 0.1));
      const shuffled = () => [...base].sort(() => Math.random() - 0.5);
      await Promise.all(Array.from({ length: 8 }, () => store.assert(tenantA, shuffled())));
      const rows = await scan(store, tenantA, { subject: 'race', limit: 100 });
      assert.equal(rows.length, 150);
      const expected = 1 - 0.9 ** 8;
      for (const r of rows) {
        assert.equal(r.assertions, 8);
        assert.ok(Math.abs(r.confidence - expected) < 1e-9, `${r.object}: ${r.confidence}`);
      }
    });

    it('recalls by any combination of subject, verb, object and min_confidence, best first', async () => {
      await store.assert(tenantA, [
        fact('ana', 'likes', 'tea', 0.4),
        fact('ana', 'likes', 'coffee', 0.8),
        fact('ana', 'lives_in', 'Lisbon', 0.8),
        fact('ben', 'likes', 'tea', 0.9),
      ]);
      // Same confidence: the more recently updated first.
      await store.assert(tenantA, [fact('ana', 'lives_in', 'Lisbon', 0)]);
      const objects = async (q: Parameters<EntityStore['recall']>[1]) =>
        (await store.recall(tenantA, q)).triples.map((t) => `${t.subject}/${t.verb}/${t.object}`);
      assert.deepEqual(await objects({ subject: 'ana', limit: 10 }), [
        'ana/lives_in/Lisbon',
        'ana/likes/coffee',
        'ana/likes/tea',
      ]);
      assert.deepEqual(await objects({ subject: 'ana', verb: 'likes', limit: 10 }), [
        'ana/likes/coffee',
        'ana/likes/tea',
      ]);
      assert.deepEqual(await objects({ object: 'tea', limit: 10 }), ['ben/likes/tea', 'ana/likes/tea']);
      assert.deepEqual(await objects({ verb: 'likes', object: 'tea', minConfidence: 0.5, limit: 10 }), [
        'ben/likes/tea',
      ]);
      assert.deepEqual(await objects({ subject: 'ana', verb: 'likes', object: 'tea', limit: 10 }), ['ana/likes/tea']);
      assert.deepEqual(await objects({ subject: 'nobody', limit: 10 }), []);
      // Paging in small steps gives exactly the table's order (ids span several digit counts here,
      // so a text-typed id would sort differently).
      const rows = await sut.storedOrder(tenantA);
      assert.ok(rows.length > 150);
      const paged = await scan(store, tenantA, { limit: 7 });
      assert.deepEqual(
        paged.map((t) => t.id),
        rows,
      );
    });

    it('paginates without duplicates or gaps among rows not modified during the scan, under concurrent writes', async () => {
      const subject = 'paged';
      // Many ties: few distinct confidences, and rows sharing one transaction share updated_at.
      const levels = [0.2, 0.5, 0.8];
      for (let batch = 0; batch < 6; batch++) {
        await store.assert(
          tenantA,
          Array.from({ length: 50 }, (_, i) => fact(subject, 'v', `seed-${batch}-${i}`, levels[(batch + i) % 3]!)),
        );
      }
      const seeded = await scan(store, tenantA, { subject, limit: 100 });
      assert.equal(seeded.length, 300);

      const modified = new Set<string>();
      let writing = true;
      let n = 0;
      const writer = (async () => {
        while (writing) {
          n++;
          // New rows land anywhere in the order; re-asserted ones move towards the front.
          await store.assert(tenantA, [
            fact(subject, 'v', `new-${n}`, levels[n % 3]!),
            fact(subject, 'v', `new-${n}-b`, Math.random()),
          ]);
          const victim = seeded[Math.floor(Math.random() * seeded.length)]!;
          modified.add(victim.id);
          await store.assert(tenantA, [fact(subject, 'v', victim.object, Math.random() * 0.5)]);
        }
      })();
      let pages = 0;
      const seen = await scan(store, tenantA, { subject, limit: 7 }, async () => {
        pages++;
        await new Promise((r) => setTimeout(r, 2));
      });
      writing = false;
      await writer;

      assert.ok(pages > 40 && n > 5, `the scan interleaved with writes (${pages} pages, ${n} write rounds)`);
      const ids = seen.map((t) => t.id);
      assert.equal(new Set(ids).size, ids.length, 'no row is returned twice');
      const returned = new Set(ids);
      const missing = seeded.filter((t) => !modified.has(t.id) && !returned.has(t.id));
      assert.deepEqual(missing, [], 'every row that existed and was not modified is returned');
    });

    it('keeps tenants apart: B cannot read or delete A’s facts by any parameter', async () => {
      await store.assert(tenantA, [fact('secret', 'is', 'A-only', 0.7)]);
      for (const q of [
        {},
        { subject: 'secret' },
        { verb: 'is' },
        { object: 'A-only' },
        { subject: 'secret', verb: 'is', object: 'A-only' },
      ]) {
        assert.deepEqual((await store.recall(tenantB, { ...q, limit: 100 })).triples, [], JSON.stringify(q));
        assert.equal(await store.forget(tenantB, q), 0, JSON.stringify(q));
      }
      // A's cursor position used by B still only walks B's rows.
      const aPage = await store.recall(tenantA, { limit: 1 });
      assert.deepEqual((await store.recall(tenantB, { limit: 100, after: aPage.next })).triples, []);
      // B asserting the same triple makes B's own row, leaving A's untouched.
      const [b] = await store.assert(tenantB, [fact('secret', 'is', 'A-only', 0.1)]);
      assert.equal(b!.inserted, true);
      const [a] = (await store.recall(tenantA, { subject: 'secret', limit: 10 })).triples;
      assert.equal(a!.confidence, 0.7);
      assert.equal(a!.assertions, 1);
      assert.equal(await store.forget(tenantB, {}), 1);
      assert.equal((await store.recall(tenantA, { subject: 'secret', limit: 10 })).triples.length, 1);
    });

    it('stores hostile text exactly and reads it back byte-identical', async () => {
      const hostile = [
        "'; DROP TABLE triples; --",
        'Robert"); DROP TABLE tenants;--',
        "O'Brien \\' \\\\ $1 $$ %_ * ?",
        '<script>alert(1)</script>',
        '{{7*7}} ${7*7} `id`',
        'NULL',
        '👩‍👩‍👧‍👦 🤖 \u{10FFFF}',
        'مرحبا بالعالم \u202e\u202d',
        'שלום עולם',
        'e\u0301', // e + combining acute: a different triple from the precomposed é
        'é',
        ' leading and trailing\t\r\n',
        '\u0001\u001f\u007f\u00a0\u200b\ufeff',
        '💥'.repeat(256),
      ];
      const inputs = hostile.map((s, i) => fact(s, hostile[(i + 1) % hostile.length]!.slice(0, 128), s, 0.5));
      await store.assert(tenantA, inputs);
      for (const s of hostile) {
        const { triples } = await store.recall(tenantA, { subject: s, limit: 10 });
        assert.equal(triples.length, 1, JSON.stringify(s));
        const t = triples[0]!;
        assert.ok(Buffer.from(t.subject, 'utf8').equals(Buffer.from(s, 'utf8')), JSON.stringify(s));
        assert.ok(Buffer.from(t.object, 'utf8').equals(Buffer.from(s, 'utf8')));
        assert.equal((await store.recall(tenantA, { object: s, limit: 10 })).triples.length, 1);
      }
      // LIKE wildcards are plain text in an exact match.
      assert.equal((await store.recall(tenantA, { subject: '%', limit: 10 })).triples.length, 0);
      assert.equal(await sut.intact(), true, 'the storage is intact');
    });

    it('writes a bulk request all or nothing: one row failing a constraint stores none', async () => {
      const items = Array.from({ length: 500 }, (_, i) => fact('atomic', 'n', String(i), 0.5));
      const cases: [string, TripleInput, string | undefined][] = [
        ['confidence above 1', fact('atomic', 'n', 'bad', 1.5), 'confidence'],
        ['subject too long', fact('x'.repeat(257), 'n', 'bad'), 'subject'],
        ['object too long', fact('atomic', 'n', '🙂'.repeat(513)), 'object'],
        ['NUL in text', fact('atomic', 'n', 'a\u0000b'), undefined],
      ];
      for (const [name, bad, field] of cases) {
        const batch = [...items.slice(0, 250), bad, ...items.slice(250)];
        await assert.rejects(store.assert(tenantA, batch), (err: AppError) => {
          assert.ok(err instanceof AppError, name);
          assert.equal(err.code, 'BAD_REQUEST', name);
          assert.equal(err.details?.field, field, name);
          assert.ok(!/INSERT|unnest|triples_/.test(err.message), `no SQL in the message: ${err.message}`);
          return true;
        });
        assert.equal((await store.recall(tenantA, { subject: 'atomic', limit: 10 })).triples.length, 0, name);
      }
    });

    it('forgets by filter, by subject, or everything of the tenant', async () => {
      await store.assert(tenantB, [fact('f', 'a', '1'), fact('f', 'a', '2'), fact('f', 'b', '1'), fact('g', 'a', '1')]);
      assert.equal(await store.forget(tenantB, { subject: 'f', verb: 'a', object: '1' }), 1);
      assert.equal(await store.forget(tenantB, { verb: 'a' }), 2);
      assert.equal(await store.forget(tenantB, { subject: 'f' }), 1);
      assert.equal(await store.forget(tenantB, {}), 0);
      assert.ok((await store.recall(tenantA, { limit: 1 })).triples.length > 0, 'A is untouched');
    });

    it('writes at most once per Idempotency-Key: a retry replays the answer, another request is refused', async () => {
      const write = (request: string) => ({
        key: 'retry-1',
        request,
        respond: (asserted: { confidence: number }[]) => ({ status: 201, body: asserted.map((t) => t.confidence) }),
      });
      const first = await store.assertOnce(tenantA, [fact('once', 'is', 'kept', 0.5)], write('r1'));
      assert.deepEqual(first, { status: 201, body: [0.5], replayed: false });
      const again = await store.assertOnce(tenantA, [fact('once', 'is', 'kept', 0.5)], write('r1'));
      assert.deepEqual(again, { status: 201, body: [0.5], replayed: true });
      // Replayed, not combined a second time.
      const [stored] = (await store.recall(tenantA, { subject: 'once', limit: 10 })).triples;
      assert.equal(stored!.confidence, 0.5);
      await assert.rejects(
        store.assertOnce(tenantA, [fact('once', 'is', 'other', 0.5)], write('r2')),
        (err: AppError) => err.code === 'IDEMPOTENCY_KEY_REUSED',
      );
      // Keys are per tenant: B's first use of the same key writes.
      const b = await store.assertOnce(tenantB, [fact('once', 'is', 'kept', 0.5)], write('r2'));
      assert.equal(b.replayed, false);
      await store.forget(tenantB, {});
    });
  });
}
