import CircuitBreaker from 'opossum';
import { AppError } from '../errors/index.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerSettings {
  /** Percentage of failed calls in the window that opens the breaker. */
  errorPercent: number;
  /** Calls the window must hold before the percentage counts (one failure of two is not a trend). */
  minCalls: number;
  /** Rolling window of the counts, ms. */
  windowMs: number;
  /** How long the breaker stays open before a probe, ms. */
  resetMs: number;
  /**
   * A timeout counts as a failure only when the call had at least this long: a client that asks
   * for an answer within 50 ms says nothing about the replica when it does not get one.
   */
  minTimeoutBudgetMs: number;
}

export const DEFAULT_BREAKER: BreakerSettings = {
  errorPercent: 50,
  minCalls: 5,
  windowMs: 10_000,
  resetMs: 5_000,
  minTimeoutBudgetMs: 1_000,
};

/** Whole-call failures that say something is wrong with the replica (not with the request). */
const REPLICA_FAULTS = new Set(['SKILL_UNAVAILABLE', 'SKILL_TIMEOUT', 'SKILL_ERROR']);

/** Thrown through opossum by a call that failed for a reason that is not the replica's fault. */
class NotAFault {
  constructor(readonly error: unknown) {}
}

/**
 * The circuit breaker of one skill replica (opossum). Calls go through {@link run}; a failure
 * rate over the rolling window, or a refused/dropped connection at once, opens it. While it is
 * open the pool sends the replica nothing. After `resetMs` it goes half-open and `probe` — a gRPC
 * health check with a short deadline — is the one call let through: SERVING closes it, anything
 * else opens it again. A client's request is never the probe, so none waits on a replica that
 * may still be hung.
 */
export class ReplicaBreaker {
  private readonly breaker: CircuitBreaker<[() => Promise<unknown>], unknown>;
  /** Epoch ms when the breaker last opened (Retry-After counts from it). */
  private openedAt = 0;

  constructor(
    private readonly settings: BreakerSettings,
    probe: () => Promise<void>,
    onChange: (state: BreakerState) => void,
  ) {
    this.breaker = new CircuitBreaker(async (fn: () => Promise<unknown>) => fn(), {
      // Calls carry their own gRPC deadlines; a deadline passing comes back as SKILL_TIMEOUT.
      timeout: false,
      errorThresholdPercentage: settings.errorPercent,
      volumeThreshold: settings.minCalls,
      rollingCountTimeout: settings.windowMs,
      rollingCountBuckets: 10,
      resetTimeout: settings.resetMs,
      errorFilter: (err: unknown) => err instanceof NotAFault,
    });
    this.breaker.on('open', () => {
      this.openedAt = Date.now();
      onChange('open');
    });
    this.breaker.on('close', () => onChange('closed'));
    this.breaker.on('halfOpen', () => {
      onChange('half-open');
      this.breaker.fire(probe).catch(() => undefined);
    });
  }

  get state(): BreakerState {
    return this.breaker.opened ? 'open' : this.breaker.halfOpen ? 'half-open' : 'closed';
  }

  /** Closed: the replica takes calls. */
  get closed(): boolean {
    return this.breaker.closed;
  }

  /** Seconds until the next probe, at least 1 (for Retry-After). */
  retryAfterS(now = Date.now()): number {
    return Math.max(1, Math.ceil((this.openedAt + this.settings.resetMs - now) / 1000));
  }

  /**
   * Runs `call` through the breaker. `budgetMs` is the deadline the call was given (see
   * minTimeoutBudgetMs). The call's own error comes back unchanged.
   */
  async run<T>(call: () => Promise<T>, budgetMs: number): Promise<T> {
    const counted = async (): Promise<T> => {
      try {
        return await call();
      } catch (err) {
        if (!this.isFault(err, budgetMs)) throw new NotAFault(err);
        throw err;
      }
    };
    try {
      return (await this.breaker.fire(counted)) as T;
    } catch (err) {
      if (err instanceof NotAFault) throw err.error;
      // Opened between the pool's pick and this call (another call's failure): the replica is out.
      if ((err as { code?: string }).code === 'EOPENBREAKER') throw new AppError('BREAKER_OPEN');
      throw err;
    }
  }

  /** Takes the replica out at once: its connection was refused or dropped (no rate to wait for). */
  trip(): void {
    if (!this.breaker.opened) this.breaker.open();
  }

  shutdown(): void {
    this.breaker.shutdown();
  }

  private isFault(err: unknown, budgetMs: number): boolean {
    if (!(err instanceof AppError) || !REPLICA_FAULTS.has(err.code)) return false;
    return err.code !== 'SKILL_TIMEOUT' || budgetMs >= this.settings.minTimeoutBudgetMs;
  }
}
