import type { ChainableCommander, ClientContext, Result } from 'ioredis';
import type { RedisClient } from '../lib/redis.js';
import { LRUCache } from 'lru-cache';
import type { Principal, Tier } from '../auth/key-store.js';
import { AppError } from '../errors/index.js';
import { tokenBucketLua } from './rate-limit-script.js';
import { decision, type LimitDecision, LocalTokenBucket } from './token-bucket.js';

const COMMAND = 'skillserveTokenBucket';

declare module 'ioredis' {
  interface RedisCommander<Context extends ClientContext = { type: 'default' }> {
    skillserveTokenBucket(key: string, capacity: number, ratePerS: number, cost: number): Result<number[], Context>;
  }
}

export interface RateLimiterOptions {
  keyPrefix: string;
  /** Requests per window, by tier. */
  limits: Record<Tier, number>;
  windowS: number;
  /** While Redis is down: a local bucket sized limit ÷ live gateways, or refuse. */
  fallback: 'local' | 'closed';
  /** Gateways currently up, as last seen in Redis. */
  liveGateways: () => number;
  now?: () => number;
}

/**
 * Per key and skill limits by tier, enforced for the whole cluster by one atomic Redis script.
 * The script is registered with ioredis's defineCommand, which sends EVALSHA and reloads the
 * script on NOSCRIPT (after a SCRIPT FLUSH or a Redis restart) by itself.
 */
export class RateLimiter {
  private readonly local = new LRUCache<string, LocalTokenBucket>({ max: 50_000, ttl: 10 * 60_000 });
  private readonly now: () => number;

  constructor(
    redis: RedisClient,
    private readonly opts: RateLimiterOptions,
  ) {
    redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: tokenBucketLua });
    this.now = opts.now ?? Date.now;
  }

  limitFor(tier: Tier): number {
    return this.opts.limits[tier];
  }

  /** Hash-tagged, so one bucket's key lives in one cluster slot. */
  bucketKey(principal: Principal, skill: string): string {
    return `${this.opts.keyPrefix}:{rl:${principal.keyId}:${skill}}`;
  }

  /** Adds the limiter's one command to a pipeline; returns how to read its answer. */
  add(pipeline: ChainableCommander, principal: Principal, skill: string): (raw: unknown) => LimitDecision {
    const limit = this.limitFor(principal.tier);
    pipeline.skillserveTokenBucket(this.bucketKey(principal, skill), limit, limit / this.opts.windowS, 1);
    return (raw) => {
      const [allowed, remaining, retryMs, fullMs] = raw as number[];
      return decision(allowed === 1, limit, remaining ?? 0, retryMs ?? 0, fullMs ?? 0);
    };
  }

  /** The decision while Redis is unavailable. */
  fallback(principal: Principal, skill: string): LimitDecision {
    if (this.opts.fallback === 'closed') {
      throw new AppError('RATE_LIMIT_UNAVAILABLE', 'rate limits cannot be checked right now', undefined, {
        retryAfterS: 1,
      });
    }
    const share = Math.max(1, this.opts.liveGateways());
    const limit = Math.max(1, Math.floor(this.limitFor(principal.tier) / share));
    const id = `${principal.keyId}:${skill}:${share}`;
    let bucket = this.local.get(id);
    if (!bucket) {
      bucket = new LocalTokenBucket(limit, limit / this.opts.windowS, this.now());
      this.local.set(id, bucket);
    }
    return bucket.take(this.now());
  }
}
