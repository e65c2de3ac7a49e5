/** What a limiter decided for one request. */
export interface LimitDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the bucket is full again (RateLimit-Reset). */
  resetS: number;
  /** Seconds to wait before a retry can succeed (Retry-After); 0 when allowed. */
  retryAfterS: number;
}

/**
 * The same token bucket as the Redis script, in process: the fallback while Redis is down.
 * Pure: the caller passes the time.
 */
export class LocalTokenBucket {
  private tokens: number;
  private ts: number;

  constructor(
    readonly capacity: number,
    /** Tokens added per second. */
    readonly rate: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.ts = now;
  }

  take(now: number, cost = 1): LimitDecision {
    this.tokens = Math.min(this.capacity, this.tokens + (Math.max(0, now - this.ts) * this.rate) / 1000);
    this.ts = now;
    const allowed = this.tokens >= cost;
    if (allowed) this.tokens -= cost;
    const retryMs = allowed ? 0 : Math.ceil(((cost - this.tokens) / this.rate) * 1000);
    const fullMs = Math.ceil(((this.capacity - this.tokens) / this.rate) * 1000);
    return decision(allowed, this.capacity, Math.floor(this.tokens), retryMs, fullMs);
  }
}

export function decision(
  allowed: boolean,
  limit: number,
  remaining: number,
  retryMs: number,
  fullMs: number,
): LimitDecision {
  return {
    allowed,
    limit,
    remaining: Math.max(0, remaining),
    resetS: Math.ceil(fullMs / 1000),
    retryAfterS: allowed ? 0 : Math.max(1, Math.ceil(retryMs / 1000)),
  };
}
