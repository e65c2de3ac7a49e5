/** One item's outcome inside a batch: its own value or its own error. */
export type BatchItemResult<R> = { ok: true; value: R } | { ok: false; error: unknown };

/** The clock and timer the batcher uses; tests pass a virtual one to make timing deterministic. */
export interface BatchTimers {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The process's monotonic clock and timers. */
export const systemTimers: BatchTimers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface DynamicBatcherOptions<T, R> {
  /** Most items in one batch. */
  maxBatchSize: number;
  /** Longest the oldest waiting item is held back so that more can join its batch; 0 = never. */
  maxQueueDelayMs: number;
  /** Batch sizes the model runs best at; each within 1..maxBatchSize. See {@link DynamicBatcher}. */
  preferredBatchSizes?: readonly number[];
  /** Batches running at once; further items wait (and grow the next batch) until one finishes. */
  maxInFlightBatches: number;
  /**
   * An item that finds the batcher idle (no batch running, nothing else pending) goes at once:
   * a lone request does not wait for a batch that no one will join. Under load batches still
   * form, since items arriving while a batch runs wait for it (Triton's default queue delay is 0
   * for the same reason). Default true; false applies the delay to every first item.
   */
  flushWhenIdle?: boolean;
  /** Items with different keys never share a batch. Without it every item has the same key. */
  key?: (item: T) => string;
  /**
   * Computes one batch. Resolves with one result per item, in item order; a missing result
   * fails its item. If it throws, every item of the batch is rejected with that error.
   */
  run: (items: T[], key: string) => Promise<BatchItemResult<R>[]>;
  timers?: BatchTimers;
}

interface Waiting<T, R> {
  item: T;
  /** When it was submitted, on `timers.now()`. */
  at: number;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

/**
 * Groups items submitted one by one into batches for `run`, the way Triton's dynamic batcher
 * does, and hands each caller its own item's result.
 *
 * Each key has a FIFO queue. Whenever an item arrives, a batch finishes or a delay runs out,
 * and fewer than `maxInFlightBatches` batches are running, a queue is flushed if:
 *
 * 1. a preferred size can be formed (pending ≥ p for some preferred p ≤ maxBatchSize): the
 *    largest such p items go at once, the rest stay queued;
 * 2. otherwise, `maxBatchSize` items are pending: that many go at once;
 * 3. otherwise, its oldest item has waited `maxQueueDelayMs` (or the batcher is closing):
 *    everything pending goes;
 * 4. otherwise, with `flushWhenIdle`, it is the only thing there is (no batch running, no other
 *    item pending): it goes at once, since no batch is forming for it to join.
 *
 * So the delay is a budget, not a fixed wait: below a preferred (or the maximum) size the
 * batcher waits for more items only until the oldest one has used up `maxQueueDelayMs`.
 * Like Triton, a preferred size wins over `maxBatchSize` when both can be formed; list the
 * maximum among the preferred sizes to keep full batches under backlog.
 *
 * While `maxInFlightBatches` batches run, nothing is flushed: items keep queueing and go out as
 * the next batch (rule 1 or 2 sizes, so at most `maxBatchSize`) as soon as a slot frees. When
 * several keys are ready, the one whose oldest item is oldest goes first. The in-flight bound
 * is shared by all keys.
 */
export class DynamicBatcher<T, R> {
  private readonly queues = new Map<string, Waiting<T, R>[]>();
  private readonly timers: BatchTimers;
  private readonly preferred: number[];
  private readonly keyOf: (item: T) => string;
  private readonly flushWhenIdle: boolean;
  private running = 0;
  private draining = false;
  private timer?: { handle: unknown; at: number };
  private idle: (() => void)[] = [];

  constructor(private readonly opts: DynamicBatcherOptions<T, R>) {
    const { maxBatchSize, maxQueueDelayMs, maxInFlightBatches } = opts;
    if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1)
      throw new RangeError(`maxBatchSize must be an integer >= 1 (got ${maxBatchSize})`);
    if (!Number.isFinite(maxQueueDelayMs) || maxQueueDelayMs < 0)
      throw new RangeError(`maxQueueDelayMs must be a finite number >= 0 (got ${maxQueueDelayMs})`);
    if (!Number.isInteger(maxInFlightBatches) || maxInFlightBatches < 1)
      throw new RangeError(`maxInFlightBatches must be an integer >= 1 (got ${maxInFlightBatches})`);
    for (const p of opts.preferredBatchSizes ?? []) {
      if (!Number.isInteger(p) || p < 1 || p > maxBatchSize)
        throw new RangeError(`preferred batch size ${p} must be an integer within 1..maxBatchSize (${maxBatchSize})`);
    }
    this.preferred = [...new Set(opts.preferredBatchSizes ?? [])].sort((a, b) => b - a);
    this.timers = opts.timers ?? systemTimers;
    this.keyOf = opts.key ?? (() => '');
    this.flushWhenIdle = opts.flushWhenIdle ?? true;
  }

  /** Queues `item` and resolves with its own result, or rejects with its own error. */
  submit(item: T): Promise<R> {
    const key = this.keyOf(item);
    return new Promise<R>((resolve, reject) => {
      let queue = this.queues.get(key);
      if (!queue) {
        queue = [];
        this.queues.set(key, queue);
      }
      queue.push({ item, at: this.timers.now(), resolve, reject });
      this.pump(this.timers.now());
    });
  }

  /** Items waiting for a batch. */
  get pending(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /** Batches running now. */
  get inFlight(): number {
    return this.running;
  }

  /**
   * Stops delaying: what is pending goes out now (still within the in-flight bound), and so does
   * anything submitted later — a closing BullMQ worker may still hand over jobs it had fetched.
   * Resolves once nothing is pending or running.
   */
  close(): Promise<void> {
    this.draining = true;
    const done = new Promise<void>((resolve) => this.idle.push(resolve));
    this.pump(this.timers.now());
    return done;
  }

  private pump(now: number): void {
    while (this.running < this.opts.maxInFlightBatches) {
      const next = this.nextBatch(now);
      if (!next) break;
      this.launch(next.key, next.batch);
    }
    this.schedule();
    if (this.running === 0 && this.queues.size === 0) {
      const idle = this.idle;
      this.idle = [];
      for (const resolve of idle) resolve();
    }
  }

  /** Takes the batch to send now, if any queue is ready: the one whose oldest item is oldest. */
  private nextBatch(now: number): { key: string; batch: Waiting<T, R>[] } | undefined {
    let best: { key: string; queue: Waiting<T, R>[]; size: number } | undefined;
    for (const [key, queue] of this.queues) {
      const size = this.readySize(queue, now);
      if (size > 0 && (!best || queue[0]!.at < best.queue[0]!.at)) best = { key, queue, size };
    }
    if (!best) return undefined;
    const batch = best.queue.splice(0, best.size);
    if (best.queue.length === 0) this.queues.delete(best.key);
    return { key: best.key, batch };
  }

  /** How many items of `queue` to send now (the rules in the class comment); 0 = keep waiting. */
  private readySize(queue: Waiting<T, R>[], now: number): number {
    const n = queue.length;
    if (n === 0) return 0;
    const { maxBatchSize, maxQueueDelayMs } = this.opts;
    const preferred = this.preferred.find((p) => p <= n);
    if (preferred !== undefined) return preferred;
    if (n >= maxBatchSize) return maxBatchSize;
    if (this.draining || now - queue[0]!.at >= maxQueueDelayMs) return n;
    if (this.flushWhenIdle && this.running === 0 && this.queues.size === 1) return n;
    return 0;
  }

  /** One timer, at the earliest deadline of a waiting queue; none while every slot is busy. */
  private schedule(): void {
    let at = Infinity;
    if (this.running < this.opts.maxInFlightBatches) {
      for (const queue of this.queues.values()) at = Math.min(at, queue[0]!.at + this.opts.maxQueueDelayMs);
    }
    if (this.timer && this.timer.at === at) return;
    if (this.timer) this.timers.clearTimeout(this.timer.handle);
    this.timer = undefined;
    if (at === Infinity) return;
    const delay = Math.max(0, Math.ceil(at - this.timers.now()));
    const handle = this.timers.setTimeout(() => {
      this.timer = undefined;
      // Timers may fire a fraction of a millisecond early by the monotonic clock; the deadline
      // they were set for has been reached all the same.
      this.pump(Math.max(this.timers.now(), at));
    }, delay);
    this.timer = { handle, at };
  }

  private launch(key: string, batch: Waiting<T, R>[]): void {
    this.running++;
    const settle = (results: BatchItemResult<R>[]) => {
      batch.forEach((w, i) => {
        const r = results[i];
        if (!r) w.reject(new Error(`the batch returned ${results.length} results for ${batch.length} items`));
        else if (r.ok) w.resolve(r.value);
        else w.reject(r.error);
      });
    };
    // A microtask later, so that `run` never re-enters `pump` synchronously.
    Promise.resolve()
      .then(() =>
        this.opts.run(
          batch.map((w) => w.item),
          key,
        ),
      )
      .then(
        (results) => (Array.isArray(results) ? settle(results) : settle([])),
        (err: unknown) => {
          for (const w of batch) w.reject(err);
        },
      )
      .finally(() => {
        this.running--;
        this.pump(this.timers.now());
      });
  }
}
