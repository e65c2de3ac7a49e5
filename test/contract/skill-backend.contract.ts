import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { isErrorCode } from '../../src/errors/index.js';
import type { BackendItem, BackendResult, SkillBackend } from '../../src/skills/backend.js';
import { SkillClient } from '../../src/skills/client.js';
import type { WireInferRequest } from '../../src/skills/proto.js';
import { createSkillServer, type SkillServer } from '../../src/skills/server.js';
import { eventually } from '../helpers/env.js';

/**
 * What a skill backend must do to be hosted by the skill server (src/skills/backend.ts), run
 * against every backend as BullMQ runs one conformance suite against each of its adapters. A new
 * backend passes this suite first: it is the checklist (CONTRIBUTING.md).
 */
export interface BackendUnderTest {
  /** A new backend, not loaded yet. */
  create(): SkillBackend;
  /** The i-th of any number of distinct good items. */
  item(i: number): BackendItem;
  /** Which item (its i) a good result answers: how item order is checked. */
  identify(result: BackendResult): number;
  /** Items that each fail alone (a wrong task, a bad input), with a catalogue code. */
  badItems: BackendItem[];
  /**
   * An item the backend takes longer to answer than any test waits (a remote call it is kept
   * waiting on); absent for backends that compute in process without waiting on anything.
   */
  slowItem?(): BackendItem;
  /** After an abort: did the backend give up what it waited on (e.g. close its upstream request)? */
  gaveUp?(): boolean;
  /**
   * A backend whose model cannot load (a corrupt file, an upstream without the model), and what
   * breaks it once the server has started (a file that goes bad after its check at start-up).
   * Absent only when nothing outside the code can break it (say why in `unbreakable`).
   */
  broken?(): Promise<{ backend: SkillBackend; afterStart?: () => void }>;
  unbreakable?: string;
  close(): Promise<void>;
}

const silent = pino({ level: 'silent' });

function okResult(r: BackendResult | undefined): BackendResult & { ok: true } {
  assert.ok(r?.ok, `expected a result, got ${JSON.stringify(r)}`);
  return r;
}

function failed(r: BackendResult | undefined): string {
  assert.ok(r && !r.ok, `expected an item error, got ${JSON.stringify(r)}`);
  assert.ok(isErrorCode(r.error.code), `item error code ${r.error.code} is in the catalogue`);
  assert.ok(r.error.message.length > 0);
  return r.error.code;
}

/** A backend whose load waits for `release()`: a window in which the model is LOADING. */
function gatedLoad(backend: SkillBackend): { backend: SkillBackend; release: () => void; loading: Promise<void> } {
  let release!: () => void;
  let entered!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const loading = new Promise<void>((r) => (entered = r));
  const wrapped: SkillBackend = {
    describe: () => backend.describe(),
    state: () => backend.state(),
    ...(backend.prepare ? { prepare: () => backend.prepare!() } : {}),
    load: async () => {
      entered();
      await gate;
      await backend.load();
    },
    unload: () => backend.unload(),
    inferBatch: (items, context) => backend.inferBatch(items, context),
  };
  return { backend: wrapped, release, loading };
}

const wire = (item: BackendItem): WireInferRequest => ({
  id: item.id,
  ...(item.tensors ? { tensors: { tensors: item.tensors } } : { text: item.text ?? '' }),
  parameters: { task: item.task, maxTokens: item.maxTokens, modelVersion: item.modelVersion },
});

export function runSkillBackendContract(name: string, factory: () => Promise<BackendUnderTest>): void {
  describe(`skill backend contract: ${name}`, () => {
    let sut: BackendUnderTest;
    let backend: SkillBackend;

    before(async () => {
      sut = await factory();
      backend = sut.create();
      await backend.prepare?.();
      await backend.load();
    });
    after(async () => {
      await backend?.unload();
      await sut?.close();
    });

    it('describes itself: a backend name, a model, its tasks and a default among them', () => {
      const d = backend.describe();
      assert.equal(d.backend, name);
      assert.ok(d.model.length > 0);
      assert.ok(d.tasks.length > 0);
      assert.ok(d.tasks.includes(d.defaultTask), `default task ${d.defaultTask} is one of ${d.tasks.join(', ')}`);
      assert.equal(typeof d.deterministic, 'boolean');
    });

    it('answers a batch in item order, one result per item', async () => {
      const order = [5, 2, 7, 0, 3, 6, 1, 4];
      const results = await backend.inferBatch(order.map((i) => sut.item(i)));
      assert.equal(results.length, order.length);
      assert.deepEqual(
        results.map((r) => sut.identify(okResult(r))),
        order,
      );
    });

    it('fails a bad item alone: the others in its batch are answered', async () => {
      for (const bad of sut.badItems) {
        const results = await backend.inferBatch([sut.item(1), bad, sut.item(2)]);
        assert.equal(results.length, 3);
        assert.equal(sut.identify(okResult(results[0])), 1);
        failed(results[1]);
        assert.equal(sut.identify(okResult(results[2])), 2);
      }
    });

    it('goes UNLOADED → READY → UNLOADED → READY, and answers after loading again', async () => {
      const b = sut.create();
      assert.notEqual(b.state(), 'READY');
      await b.prepare?.();
      await b.load();
      assert.equal(b.state(), 'READY');
      assert.equal(sut.identify(okResult((await b.inferBatch([sut.item(3)]))[0])), 3);
      await b.unload();
      assert.equal(b.state(), 'UNLOADED');
      await b.load();
      assert.equal(b.state(), 'READY');
      assert.equal(sut.identify(okResult((await b.inferBatch([sut.item(4)]))[0])), 4);
      await b.unload();
    });

    it('settles a call whose caller has gone: one result per item, none left hanging', async () => {
      const controller = new AbortController();
      controller.abort();
      const results = await backend.inferBatch([sut.item(0), sut.item(1)], {
        deadline: Date.now() - 1,
        signal: controller.signal,
      });
      assert.equal(results.length, 2);
      for (const r of results) if (!r.ok) failed(r);
    });

    it('stops waiting at the deadline: the slow item fails with a catalogue code', { timeout: 30_000 }, async (t) => {
      if (!sut.slowItem) return t.skip(`${name} computes in process and waits on nothing`);
      const controller = new AbortController();
      const deadline = Date.now() + 200;
      setTimeout(() => controller.abort(), 200).unref();
      // Without the abort this call would outlast the test's own timeout below.
      const [r] = await backend.inferBatch([sut.slowItem()], { deadline, signal: controller.signal });
      failed(r);
      if (sut.gaveUp) await eventually(async () => assert.ok(sut.gaveUp!(), 'the backend gave up its wait'));
    });

    describe('hosted by the skill server', () => {
      let server: SkillServer | undefined;
      let client: SkillClient | undefined;
      after(async () => {
        client?.close();
        await server?.stop(1_000);
      });

      it('is SERVING while its model loads, LOADING until it has, then READY', async () => {
        const gated = gatedLoad(sut.create());
        server = createSkillServer({ name, backend: gated.backend, logger: silent, registry: new Registry() });
        const port = await server.start('127.0.0.1', 0);
        client = new SkillClient(name, `127.0.0.1:${port}`);
        assert.equal(await client.check(2_000), 'SERVING');
        // The first call loads the model, lazily.
        const call = client.inferBatch([wire(sut.item(6))], 30_000);
        await gated.loading;
        assert.equal(await client.check(2_000), 'SERVING');
        assert.equal((await client.metrics(2_000)).modelState, 'LOADING');
        gated.release();
        const [answer] = (await call).items;
        assert.equal(answer?.error?.code ?? '', '', JSON.stringify(answer?.error));
        assert.equal((await client.metrics(2_000)).modelState, 'READY');
        assert.equal(await client.check(2_000), 'SERVING');
      });

      it('a model that cannot load: refused at start-up, or FAILED and NOT_SERVING once tried', async (t) => {
        if (!sut.broken) return t.skip(sut.unbreakable ?? 'no way to break it here');
        const { backend: b, afterStart } = await sut.broken();
        const s = createSkillServer({
          name,
          backend: b,
          logger: silent,
          registry: new Registry(),
          lifecycle: { healthIntervalMs: 50 },
        });
        let port: number;
        try {
          port = await s.start('127.0.0.1', 0);
        } catch (err) {
          // Refused at start-up, with a message saying what is wrong.
          assert.ok((err as Error).message.length > 0);
          assert.notEqual(b.state(), 'READY');
          await s.stop(100);
          return;
        }
        afterStart?.();
        const c = new SkillClient(name, `127.0.0.1:${port}`);
        try {
          const answer = await c.inferBatch([wire(sut.item(0))], 10_000).then(
            (r) => r.items[0]?.error?.code,
            (err: { code?: string }) => err.code,
          );
          assert.ok(answer && isErrorCode(answer), `a catalogue code, got ${answer}`);
          await eventually(async () => {
            assert.equal(b.state(), 'FAILED');
            assert.equal(await c.check(2_000), 'NOT_SERVING');
          });
        } finally {
          c.close();
          await s.stop(100);
        }
      });
    });
  });
}
