import { EventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import type { ChainableCommander } from 'ioredis';
import { AppError } from '../errors/index.js';
import { pipelineFor } from '../lib/cluster-batch.js';
import type { RedisClient } from '../lib/redis.js';
import { SettleTimeout, settleWithin } from '../lib/settle-within.js';

export interface RedisGuardOptions {
  /** A pipeline slower than this counts as a failure. */
  timeoutMs: number;
  /** How long the breaker stays open before it lets one try through. */
  resetMs: number;
  /**
   * Interval of a PING through the breaker, so a hung Redis is found (and the requests waiting
   * on it released, see onUnavailable) even when no request is asking it; 0: no probe.
   */
  probeMs?: number;
  onStateChange?: (state: 'open' | 'half-open' | 'closed') => void;
}

interface Part {
  /** Its commands' positions in the batch's pipeline: [from, to). */
  from: number;
  to: number;
  resolve: (results: unknown[]) => void;
  reject: (err: unknown) => void;
}

interface Batch {
  pipeline: ChainableCommander;
  parts: Part[];
}

/**
 * Redis behind a circuit breaker, for the gateway's hot path. A call fails at once while the
 * connection is not ready or the breaker is open, so no request waits on a dead Redis; after
 * `resetMs` one call is let through, and success closes the breaker again.
 *
 * Calls made in the same turn of the event loop share one pipeline, sent when the turn's I/O
 * has been handled (setImmediate): under load, the requests that arrived together cost Redis
 * one write and one read instead of one each, and each call still gets exactly its own
 * commands' results in one round trip. ioredis's own auto-pipelining flushes on
 * process.nextTick, which runs after every socket's callback, so it never groups requests that
 * arrive on different connections.
 */
export class RedisGuard {
  private readonly breaker: CircuitBreaker<[ChainableCommander], [Error | null, unknown][]>;
  private batch: Batch | undefined;
  private readonly events = new EventEmitter().setMaxListeners(0);
  private readonly probe?: NodeJS.Timeout;

  constructor(
    private readonly redis: RedisClient,
    opts: RedisGuardOptions,
  ) {
    // The timeout is settleWithin's, not opossum's: a gateway that was itself stalled must not
    // take the answers waiting in its socket for a hung Redis (see settle-within.ts).
    this.breaker = new CircuitBreaker(
      async (pipeline: ChainableCommander) => (await settleWithin(pipeline.exec(), opts.timeoutMs)) ?? [],
      {
        timeout: false,
        resetTimeout: opts.resetMs,
        errorThresholdPercentage: 50,
        volumeThreshold: 3,
        rollingCountTimeout: 5_000,
      },
    );
    // A hung Redis answers nothing, so the error percentage over the rolling window (diluted by
    // the seconds of successes before) would open the breaker only after many requests had each
    // waited the full timeout. Timeouts in a row are the sign: two open it at once.
    let timeouts = 0;
    this.breaker.on('failure', (err: unknown) => {
      if (err instanceof SettleTimeout && ++timeouts >= 2 && !this.breaker.opened) this.breaker.open();
    });
    this.breaker.on('success', () => {
      timeouts = 0;
    });
    this.breaker.on('open', () => {
      this.events.emit('unavailable');
      opts.onStateChange?.('open');
    });
    this.breaker.on('halfOpen', () => opts.onStateChange?.('half-open'));
    if (opts.probeMs) {
      this.probe = setInterval(() => {
        if (this.redis.status === 'ready' && !this.breaker.opened) this.exec((p) => p.ping()).catch(() => undefined);
      }, opts.probeMs);
      this.probe.unref();
    }
    this.breaker.on('close', () => opts.onStateChange?.('closed'));
  }

  /** Redis is usable right now: connected, and the breaker lets calls through. */
  available(): boolean {
    return this.redis.status === 'ready' && !this.breaker.opened;
  }

  /** The breaker's state, for metrics; `open` also while the connection is down (calls fail at once then too). */
  breakerState(): 'closed' | 'open' | 'half-open' {
    if (this.redis.status !== 'ready') return 'open';
    return this.breaker.halfOpen ? 'half-open' : this.breaker.opened ? 'open' : 'closed';
  }

  /** Calls `listener` when the breaker opens (Redis found failing or hung); returns how to stop listening. */
  onUnavailable(listener: () => void): () => void {
    this.events.on('unavailable', listener);
    return () => this.events.off('unavailable', listener);
  }

  /** Why Redis is not usable, for /readyz; undefined when it is. */
  problem(): string | undefined {
    if (this.redis.status !== 'ready') return `connection ${this.redis.status}`;
    if (this.breaker.opened) return 'circuit open after failures';
    return undefined;
  }

  /** Runs the commands `build` adds in one round trip (shared with the other calls of this turn). */
  exec(build: (p: ChainableCommander) => void): Promise<unknown[]> {
    if (this.redis.status !== 'ready')
      return Promise.reject(new AppError('QUEUE_UNAVAILABLE', 'Redis is not connected'));
    let batch = this.batch;
    if (!batch) {
      // A cluster cannot pipeline keys of different slots: there each command goes to its own node.
      batch = this.batch = { pipeline: pipelineFor(this.redis), parts: [] };
      setImmediate(() => void this.flush());
    }
    const from = batch.pipeline.length;
    build(batch.pipeline);
    const to = batch.pipeline.length;
    const parts = batch.parts;
    return new Promise<unknown[]>((resolve, reject) => parts.push({ from, to, resolve, reject }));
  }

  shutdown(): void {
    clearInterval(this.probe);
    this.breaker.shutdown();
  }

  private async flush(): Promise<void> {
    const batch = this.batch;
    this.batch = undefined;
    if (!batch) return;
    let results: [Error | null, unknown][];
    try {
      results = await this.breaker.fire(batch.pipeline);
    } catch (err) {
      const error =
        err instanceof AppError
          ? err
          : new AppError('QUEUE_UNAVAILABLE', 'Redis did not answer', undefined, { cause: err });
      for (const part of batch.parts) part.reject(error);
      return;
    }
    for (const part of batch.parts) {
      const mine = results.slice(part.from, part.to);
      // A per-command error (e.g. a script error) is a bug, not an outage: that call fails with it.
      const failed = mine.find(([err]) => err);
      if (failed)
        part.reject(new AppError('QUEUE_UNAVAILABLE', 'a Redis command failed', undefined, { cause: failed[0] }));
      else part.resolve(mine.map(([, value]) => value));
    }
  }
}
