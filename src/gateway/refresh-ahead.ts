import { LRUCache } from 'lru-cache';
import type { RefreshPredictor } from '../cache/refresh-ahead.js';
import type { Logger } from '../observability/logger.js';
import type { GatewayMetrics } from './metrics.js';

/** What the refresher needs to recompute a key: the request, kept apart from the cached answer. */
export interface Recipe {
  cacheKey: string;
}

export interface RefreshAheadDeps<R extends Recipe> {
  predictor: RefreshPredictor;
  /** Recomputes and stores the entry; resolves with its new expiry. */
  recompute: (recipe: R) => Promise<number>;
  /** Takes a short cluster-wide lock, so two gateways do not refresh one key together. */
  lock: (cacheKey: string) => Promise<boolean>;
  metrics: GatewayMetrics;
  logger: Logger;
  /** Most recipes kept (each is one request's normalised input). */
  maxRecipes?: number;
  /** How long a recipe outlives its last access: predictive warming may refresh an expired entry. */
  recipeTtlMs: number;
}

/**
 * Feeds the predictor from the request path and runs its predictions: every tick, the keys it
 * says are due are recomputed (through the normal queue) and stored before traffic asks again.
 * Each gateway learns from the requests it sees; with N gateways behind least_conn each sees
 * about 1/N of a key's traffic, which the trace benchmark measures (docs/BENCHMARKS.md).
 */
export class RefreshAhead<R extends Recipe> {
  private readonly recipes: LRUCache<string, R>;
  private running = false;

  constructor(private readonly deps: RefreshAheadDeps<R>) {
    this.recipes = new LRUCache<string, R>({ max: deps.maxRecipes ?? 10_000, ttl: deps.recipeTtlMs });
  }

  access(recipe: R, now: number, hitExpiresAt?: number): void {
    this.recipes.set(recipe.cacheKey, recipe);
    this.deps.predictor.recordAccess(recipe.cacheKey, now, hitExpiresAt);
  }

  stored(cacheKey: string, expiresAt: number, now: number): void {
    this.deps.predictor.recordStore(cacheKey, expiresAt, now);
  }

  /** Recomputes the keys that are due now; returns how many were refreshed. */
  async tick(now = Date.now()): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    try {
      const due = this.deps.predictor.due(now);
      const results = await Promise.allSettled(due.map((key) => this.refresh(key)));
      return results.filter((r) => r.status === 'fulfilled' && r.value).length;
    } finally {
      this.running = false;
    }
  }

  private async refresh(key: string): Promise<boolean> {
    const recipe = this.recipes.get(key);
    if (!recipe) return false;
    if (!(await this.deps.lock(key).catch(() => false))) {
      this.deps.metrics.cacheRefreshes.inc({ outcome: 'skipped' });
      return false;
    }
    try {
      const expiresAt = await this.deps.recompute(recipe);
      this.stored(key, expiresAt, Date.now());
      this.deps.metrics.cacheRefreshes.inc({ outcome: 'refreshed' });
      return true;
    } catch (err) {
      this.deps.metrics.cacheRefreshes.inc({ outcome: 'failed' });
      this.deps.logger.debug({ err }, 'refresh-ahead failed');
      return false;
    }
  }
}
