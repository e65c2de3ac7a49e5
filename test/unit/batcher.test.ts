import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type BatchItemResult,
  type BatchTimers,
  DynamicBatcher,
  type DynamicBatcherOptions,
} from '../../src/queue/batcher.js';

/** A virtual clock: time moves only when the test says so, timers fire in deadline order. */
class VirtualTimers implements BatchTimers {
  t = 0;
  private seq = 0;
  private readonly pending = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  get armed(): number {
    return this.pending.size;
  }
  /** Moves time forward by `ms`, firing each due timer at its own time and settling promises after it. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.pending) if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      this.pending.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

/** Lets every queued promise callback run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Deferred<V> {
  promise: Promise<V>;
  resolve: (v: V) => void;
  reject: (e: unknown) => void;
}
function deferred<V>(): Deferred<V> {
  let resolve!: (v: V) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<V>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A batcher whose `run` records each batch and answers when the test resolves it. */
function harness(opts: Partial<DynamicBatcherOptions<string, string>> = {}, autoAnswer = true) {
  const timers = new VirtualTimers();
  const batches: { items: string[]; key: string; done: Deferred<BatchItemResult<string>[]> }[] = [];
  let running = 0;
  let maxRunning = 0;
  const batcher = new DynamicBatcher<string, string>({
    maxBatchSize: 4,
    maxQueueDelayMs: 10,
    maxInFlightBatches: 1,
    // The delay rules below are tested with every first item waiting; the idle flush has its own tests.
    flushWhenIdle: false,
    timers,
    run: async (items, key) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      const done = deferred<BatchItemResult<string>[]>();
      batches.push({ items, key, done });
      if (autoAnswer) done.resolve(items.map((i) => ({ ok: true, value: `out:${i}` })));
      try {
        return await done.promise;
      } finally {
        running--;
      }
    },
    ...opts,
  });
  return {
    timers,
    batcher,
    batches,
    sizes: () => batches.map((b) => b.items.length),
    maxRunning: () => maxRunning,
    answer(i: number) {
      const b = batches[i]!;
      b.done.resolve(b.items.map((x) => ({ ok: true, value: `out:${x}` })));
    },
  };
}

describe('DynamicBatcher', () => {
  it('flushes as soon as maxBatchSize items are pending, without waiting for the delay', async () => {
    const h = harness({ maxBatchSize: 4, maxQueueDelayMs: 1_000 });
    const results = ['a', 'b', 'c', 'd'].map((x) => h.batcher.submit(x));
    await settle();
    assert.deepEqual(
      h.batches.map((b) => b.items),
      [['a', 'b', 'c', 'd']],
    );
    assert.equal(h.timers.t, 0);
    assert.deepEqual(await Promise.all(results), ['out:a', 'out:b', 'out:c', 'out:d']);
  });

  it('flushes a partial batch when its oldest item has waited maxQueueDelayMs', async () => {
    const h = harness({ maxBatchSize: 8, maxQueueDelayMs: 5 });
    const a = h.batcher.submit('a');
    await h.timers.advance(3);
    const b = h.batcher.submit('b');
    await h.timers.advance(1);
    assert.equal(h.batches.length, 0, 'not before the oldest item has waited 5 ms');
    await h.timers.advance(1);
    assert.deepEqual(
      h.batches.map((x) => x.items),
      [['a', 'b']],
      'at t=5, measured from the oldest item, not the newest',
    );
    assert.deepEqual(await Promise.all([a, b]), ['out:a', 'out:b']);
  });

  it('sends each item at once when maxQueueDelayMs is 0', async () => {
    const h = harness({ maxBatchSize: 8, maxQueueDelayMs: 0, maxInFlightBatches: 4 });
    await Promise.all([h.batcher.submit('a'), h.batcher.submit('b')]);
    assert.deepEqual(h.sizes(), [1, 1]);
  });

  it('completes each item with its own result or its own error; one bad item fails only itself', async () => {
    const boom = new Error('bad item');
    const h = harness({
      maxBatchSize: 3,
      run: async (items) =>
        items.map((i) => (i === 'bad' ? { ok: false, error: boom } : { ok: true, value: `out:${i}` })),
    });
    const [a, bad, c] = ['a', 'bad', 'c'].map((x) => h.batcher.submit(x));
    assert.equal(await a, 'out:a');
    await assert.rejects(bad!, (err) => err === boom);
    assert.equal(await c, 'out:c');
  });

  it('rejects every item of a batch whose run throws, with that error, and keeps serving', async () => {
    const down = new Error('skill down');
    let calls = 0;
    const h = harness({
      maxBatchSize: 2,
      run: async (items) => {
        if (calls++ === 0) throw down;
        return items.map((i) => ({ ok: true as const, value: `out:${i}` }));
      },
    });
    const first = ['a', 'b'].map((x) => h.batcher.submit(x));
    for (const p of first) await assert.rejects(p, (err) => err === down);
    assert.deepEqual(await Promise.all(['c', 'd'].map((x) => h.batcher.submit(x))), ['out:c', 'out:d']);
  });

  it('fails an item the run returned no result for', async () => {
    const h = harness({ maxBatchSize: 2, run: async () => [{ ok: true, value: 'only one' }] });
    const [a, b] = ['a', 'b'].map((x) => h.batcher.submit(x));
    assert.equal(await a, 'only one');
    await assert.rejects(b!, /returned 1 results for 2 items/);
  });

  it('never runs more than maxInFlightBatches batches; items accumulate and go when a slot frees', async () => {
    const h = harness({ maxBatchSize: 4, maxQueueDelayMs: 0, maxInFlightBatches: 2 }, false);
    const all = Array.from({ length: 11 }, (_, i) => h.batcher.submit(`i${i}`));
    await settle();
    // Delay 0: the first two items go one each; the other nine wait for a slot.
    assert.deepEqual(h.sizes(), [1, 1]);
    assert.equal(h.batcher.inFlight, 2);
    assert.equal(h.batcher.pending, 9);
    await h.timers.advance(100);
    assert.equal(h.batches.length, 2, 'no third batch while two are running, however long they take');

    h.answer(0);
    await settle();
    assert.deepEqual(h.sizes(), [1, 1, 4], 'the next batch is as large as maxBatchSize allows');
    h.answer(1);
    await settle();
    assert.deepEqual(h.sizes(), [1, 1, 4, 4]);
    h.answer(2);
    await settle();
    assert.deepEqual(h.sizes(), [1, 1, 4, 4, 1]);
    h.answer(3);
    h.answer(4);
    await Promise.all(all);
    assert.equal(h.maxRunning(), 2);
  });

  it('keeps submission order inside a batch and across batches', async () => {
    const h = harness({ maxBatchSize: 3, maxQueueDelayMs: 0 }, false);
    const settled: string[] = [];
    const all = Array.from({ length: 7 }, (_, i) => h.batcher.submit(`i${i}`).then((v) => settled.push(v)));
    await settle();
    for (let i = 0; h.batches.length > i; i++) {
      h.answer(i);
      await settle();
    }
    await Promise.all(all);
    assert.deepEqual(
      h.batches.map((b) => b.items),
      [['i0'], ['i1', 'i2', 'i3'], ['i4', 'i5', 'i6']],
    );
    assert.deepEqual(
      settled,
      Array.from({ length: 7 }, (_, i) => `out:i${i}`),
    );
  });

  it('close() flushes what is pending at once and resolves when it is done', async () => {
    const h = harness({ maxBatchSize: 8, maxQueueDelayMs: 60_000 });
    const items = ['a', 'b', 'c'].map((x) => h.batcher.submit(x));
    await settle();
    assert.equal(h.batches.length, 0);
    assert.equal(h.timers.armed, 1);
    let closed = false;
    const closing = h.batcher.close().then(() => (closed = true));
    await settle();
    assert.deepEqual(
      h.batches.map((b) => b.items),
      [['a', 'b', 'c']],
    );
    await closing;
    assert.ok(closed);
    assert.equal(h.timers.armed, 0, 'no timer left behind');
    assert.deepEqual(await Promise.all(items), ['out:a', 'out:b', 'out:c']);
    // A late item (a closing worker may still hand one over) goes out without waiting.
    assert.equal(await h.batcher.submit('late'), 'out:late');
  });

  it('close() waits for batches still running', async () => {
    const h = harness({ maxBatchSize: 1 }, false);
    const a = h.batcher.submit('a');
    await settle();
    let closed = false;
    const closing = h.batcher.close().then(() => (closed = true));
    await settle();
    assert.equal(closed, false);
    h.answer(0);
    await closing;
    assert.equal(await a, 'out:a');
  });

  describe('preferred batch sizes', () => {
    it('sends a preferred size at once instead of waiting out the delay', async () => {
      const h = harness({ maxBatchSize: 8, maxQueueDelayMs: 50, preferredBatchSizes: [4] });
      const items = ['a', 'b', 'c'].map((x) => h.batcher.submit(x));
      await settle();
      assert.equal(h.batches.length, 0, 'below the preferred size it waits, within the delay');
      items.push(h.batcher.submit('d'));
      await settle();
      assert.deepEqual(h.sizes(), [4]);
      assert.equal(h.timers.t, 0);
      await Promise.all(items);
    });

    it('under backlog sends the largest preferred size that fits; the rest waits for its own deadline', async () => {
      const h = harness({ maxBatchSize: 8, maxQueueDelayMs: 10, preferredBatchSizes: [2, 4] }, false);
      const first = h.batcher.submit('x');
      await h.timers.advance(10);
      assert.deepEqual(h.sizes(), [1]);
      const rest = Array.from({ length: 7 }, (_, i) => h.batcher.submit(`i${i}`));
      await h.timers.advance(1);
      h.answer(0);
      await settle();
      assert.deepEqual(h.sizes(), [1, 4], 'seven pending: the largest preferred size, 4');
      h.answer(1);
      await settle();
      assert.deepEqual(h.sizes(), [1, 4, 2], 'three pending: 2');
      h.answer(2);
      await settle();
      assert.equal(h.batches.length, 3, 'one left, below every preferred size: it waits');
      await h.timers.advance(9);
      assert.deepEqual(h.sizes(), [1, 4, 2, 1], 'and goes when it has waited 10 ms');
      h.answer(3);
      await Promise.all([first, ...rest]);
    });

    it('rejects a preferred size above maxBatchSize', () => {
      assert.throws(
        () =>
          new DynamicBatcher({
            maxBatchSize: 4,
            maxQueueDelayMs: 1,
            maxInFlightBatches: 1,
            preferredBatchSizes: [8],
            run: async () => [],
          }),
        /preferred batch size 8 must be an integer within 1..maxBatchSize \(4\)/,
      );
    });
  });

  describe('batch keys', () => {
    it('never mixes keys in one batch, and sends the queue with the oldest item first', async () => {
      const h = harness(
        { maxBatchSize: 4, maxQueueDelayMs: 10, maxInFlightBatches: 1, key: (s) => s.split(':')[0]! },
        false,
      );
      const all = [h.batcher.submit('tokens:1')];
      await h.timers.advance(2);
      all.push(h.batcher.submit('sentiment:1'), h.batcher.submit('tokens:2'), h.batcher.submit('sentiment:2'));
      await h.timers.advance(8);
      assert.deepEqual(
        h.batches.map((b) => [b.key, b.items]),
        [['tokens', ['tokens:1', 'tokens:2']]],
      );
      await h.timers.advance(5);
      assert.equal(h.batches.length, 1, 'the other key is due, but the only slot is busy');
      h.answer(0);
      await settle();
      assert.deepEqual(
        h.batches.map((b) => b.key),
        ['tokens', 'sentiment'],
      );
      h.answer(1);
      await Promise.all(all);
    });
  });

  describe('flushWhenIdle', () => {
    it('sends a lone item at once, without waiting out the delay', async () => {
      const h = harness({ flushWhenIdle: true });
      const a = h.batcher.submit('a');
      await h.timers.advance(0);
      assert.deepEqual(
        h.batches.map((b) => b.items),
        [['a']],
      );
      assert.equal(await a, 'out:a');
    });

    it('still gathers items that arrive while a batch runs, and sends them together', async () => {
      const h = harness({ flushWhenIdle: true, maxInFlightBatches: 2 }, false);
      const first = h.batcher.submit('a');
      await h.timers.advance(0);
      const rest = ['b', 'c', 'd'].map((x) => h.batcher.submit(x));
      await h.timers.advance(0);
      // 'a' runs; b, c, d wait for more (the delay), though a slot is free.
      assert.deepEqual(
        h.batches.map((b) => b.items),
        [['a']],
      );
      await h.timers.advance(10);
      assert.deepEqual(
        h.batches.map((b) => b.items),
        [['a'], ['b', 'c', 'd']],
      );
      for (const b of h.batches) b.done.resolve(b.items.map((x) => ({ ok: true, value: `out:${x}` })));
      assert.deepEqual(await Promise.all([first, ...rest]), ['out:a', 'out:b', 'out:c', 'out:d']);
    });
  });

  it('validates its options with messages that say what is expected', () => {
    const run = async () => [];
    assert.throws(
      () => new DynamicBatcher({ maxBatchSize: 0, maxQueueDelayMs: 1, maxInFlightBatches: 1, run }),
      /maxBatchSize must be an integer >= 1 \(got 0\)/,
    );
    assert.throws(
      () => new DynamicBatcher({ maxBatchSize: 2, maxQueueDelayMs: -1, maxInFlightBatches: 1, run }),
      /maxQueueDelayMs must be a finite number >= 0/,
    );
    assert.throws(
      () => new DynamicBatcher({ maxBatchSize: 2, maxQueueDelayMs: 1, maxInFlightBatches: 0, run }),
      /maxInFlightBatches must be an integer >= 1/,
    );
  });
});
