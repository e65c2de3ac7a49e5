import type { ChainableCommander } from 'ioredis';
import { LRUCache } from 'lru-cache';

/** What is cached for one request: the answer, and when it was computed and goes stale. */
export interface CacheEntry<T = unknown> {
  value: T;
  createdAt: number;
  expiresAt: number;
}

export interface ResponseCacheOptions {
  keyPrefix: string;
  /** In-process level: entries, bytes and how long an entry may be served from it. */
  l1: { maxEntries: number; maxBytes: number; ttlMs: number };
  /** Expired entries stay in Redis this long, to be served as STALE when the skill cannot answer. */
  staleGraceS: number;
  now?: () => number;
}

/**
 * Two levels: a small, short-lived in-process LRU over the shared Redis level. The L1 copy is
 * bounded by `l1.ttlMs` as well as by the entry's own expiry, so gateways converge on Redis
 * quickly after a refresh. Reads from Redis go through the caller's pipeline (one round trip
 * together with the rate limiter); writes are fire-and-forget.
 */
export class ResponseCache {
  private readonly l1: LRUCache<string, CacheEntry, unknown>;
  private readonly now: () => number;

  constructor(private readonly opts: ResponseCacheOptions) {
    this.now = opts.now ?? Date.now;
    this.l1 = new LRUCache<string, CacheEntry, unknown>({
      max: opts.l1.maxEntries,
      maxSize: opts.l1.maxBytes,
      sizeCalculation: (e) => JSON.stringify(e.value).length + 64,
      ttl: opts.l1.ttlMs,
      // Past its L1 TTL an entry is not served while Redis answers, but stays (until evicted or
      // replaced) for while it does not: see getLocal.
      noDeleteOnStaleGet: true,
    });
  }

  /**
   * `<prefix>:cache:<tenant|shared>:{<hash>}`: hash-tagged, so the entry and the keys made from it
   * (`…:refreshing`) share a Redis Cluster slot, and entries spread over the cluster by hash.
   */
  redisKey(scope: string, hash: string): string {
    return `${this.opts.keyPrefix}:cache:${scope}:{${hash}}`;
  }

  /**
   * The in-process copy, if it is still fresh. `pastL1Ttl`: also one older than the L1 TTL (for
   * while Redis is unavailable: the TTL is there to pick up newer entries from Redis, and there
   * is none to pick up), as long as the entry itself has not expired.
   */
  getLocal(key: string, opts: { pastL1Ttl?: boolean } = {}): CacheEntry | undefined {
    const e = this.l1.get(key, { allowStale: opts.pastL1Ttl === true });
    return e && e.expiresAt > this.now() ? e : undefined;
  }

  /** Adds a GET to a pipeline; returns how to read its answer (fresh or stale, or undefined). */
  add(pipeline: ChainableCommander, key: string): (raw: unknown) => CacheEntry | undefined {
    pipeline.get(key);
    return (raw) => {
      if (typeof raw !== 'string') return undefined;
      try {
        const entry = JSON.parse(raw) as CacheEntry;
        if (entry.expiresAt > this.now()) this.l1.set(key, entry);
        return entry;
      } catch {
        return undefined;
      }
    };
  }

  /** Builds an entry that is fresh for `ttlS` from now. */
  entry<T>(value: T, ttlS: number): CacheEntry<T> {
    const now = this.now();
    return { value, createdAt: now, expiresAt: now + ttlS * 1000 };
  }

  /** Stores in both levels; Redis keeps it `staleGraceS` past its expiry. */
  set(pipeline: ChainableCommander, key: string, entry: CacheEntry): void {
    this.l1.set(key, entry);
    const ttlMs = Math.max(1, entry.expiresAt - this.now()) + this.opts.staleGraceS * 1000;
    pipeline.set(key, JSON.stringify(entry), 'PX', ttlMs);
  }

  /** Drops the in-process copy (after `no-cache`, the next reader should see the new entry). */
  forgetLocal(key: string): void {
    this.l1.delete(key);
  }

  stats(): { l1Entries: number; l1Bytes: number } {
    return { l1Entries: this.l1.size, l1Bytes: this.l1.calculatedSize };
  }
}
