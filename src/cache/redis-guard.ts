import CircuitBreaker from 'opossum';
import type { ChainableCommander, Redis } from 'ioredis';
import { AppError } from '../errors/index.js';

export interface RedisGuardOptions {
  /** A pipeline slower than this counts as a failure. */
  timeoutMs: number;
  /** How long the breaker stays open before it lets one try through. */
  resetMs: number;
  onStateChange?: (state: 'open' | 'half-open' | 'closed') => void;
}

/**
 * Redis behind a circuit breaker, for the gateway's hot path. A call fails at once while the
 * connection is not ready or the breaker is open, so no request waits on a dead Redis; after
 * `resetMs` one call is let through, and success closes the breaker again.
 */
export class RedisGuard {
  private readonly breaker: CircuitBreaker<[(p: ChainableCommander) => void], unknown[]>;

  constructor(
    private readonly redis: Redis,
    opts: RedisGuardOptions,
  ) {
    this.breaker = new CircuitBreaker(
      async (build: (p: ChainableCommander) => void) => {
        const pipeline = redis.pipeline();
        build(pipeline);
        const results = (await pipeline.exec()) ?? [];
        // A per-command error (e.g. a script error) is a bug, not an outage: surface it as is.
        return results.map(([err, value]) => {
          if (err) throw err;
          return value;
        });
      },
      {
        timeout: opts.timeoutMs,
        resetTimeout: opts.resetMs,
        errorThresholdPercentage: 50,
        volumeThreshold: 3,
        rollingCountTimeout: 5_000,
      },
    );
    this.breaker.on('open', () => opts.onStateChange?.('open'));
    this.breaker.on('halfOpen', () => opts.onStateChange?.('half-open'));
    this.breaker.on('close', () => opts.onStateChange?.('closed'));
  }

  /** Redis is usable right now: connected, and the breaker lets calls through. */
  available(): boolean {
    return this.redis.status === 'ready' && !this.breaker.opened;
  }

  /** Why Redis is not usable, for /readyz; undefined when it is. */
  problem(): string | undefined {
    if (this.redis.status !== 'ready') return `connection ${this.redis.status}`;
    if (this.breaker.opened) return 'circuit open after failures';
    return undefined;
  }

  /** Runs the commands `build` adds as one pipeline: one round trip. */
  async exec(build: (p: ChainableCommander) => void): Promise<unknown[]> {
    if (this.redis.status !== 'ready') throw new AppError('QUEUE_UNAVAILABLE', 'Redis is not connected');
    try {
      return await this.breaker.fire(build);
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw new AppError('QUEUE_UNAVAILABLE', 'Redis did not answer', undefined, { cause: err });
    }
  }

  shutdown(): void {
    this.breaker.shutdown();
  }
}
