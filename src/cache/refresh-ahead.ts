import { LRUCache } from 'lru-cache';
import {
  gapStd,
  isRegular,
  newAccessStats,
  rateLowerBound,
  recordArrival,
  type AccessModel,
  type AccessStats,
} from './access-stats.js';
import { MinHeap } from './min-heap.js';

/**
 * Refresh-ahead predictor: learns which cache keys are hot and when they recur, and says which
 * entries to recompute shortly before a request would otherwise miss.
 *
 * Pure logic: no I/O, no timers, no `Date.now()`. Every method takes `now` (ms, any monotonic
 * clock shared by all calls), so the gateway drives it from its own clock and tests from a
 * virtual one.
 *
 * Two ways a key qualifies (after `minHits` accesses; statistics in `access-stats.ts`):
 * - **regular** — the coefficient of variation of its inter-arrival times is at most `maxCv`
 *   (a gap of about k periods counts as k-1 skipped beats). The next access is predicted at
 *   `last + meanGap`; if the cached entry will not be valid then (allowing `jitterSigmas`
 *   standard deviations of lateness), the key is due `leadMs + jitter` before that predicted
 *   access (later, if the TTL is shorter than that window). This covers periods both shorter
 *   and longer than the TTL, with one recompute per miss avoided.
 * - **frequent** (irregular, e.g. Poisson/Zipf traffic) — no arrival time can be predicted, so
 *   the key is due `leadMs` before its entry expires when the decayed access rate makes at least
 *   one access within the next TTL likely (`minHitProbability`) and the current entry was read
 *   at least once since it was stored (an entry nobody read is not renewed).
 *
 * A key returned by {@link RefreshPredictor.due} (or approved by
 * {@link RefreshPredictor.shouldRefreshOnHit}) is not returned again until
 * {@link RefreshPredictor.recordStore} records the recomputed entry.
 */

/** Options of {@link RefreshPredictor}. All durations are in milliseconds. */
export interface RefreshPredictorOptions {
  /** Most keys whose statistics are kept; the least recently accessed are forgotten. Default 10 000. */
  maxTrackedKeys?: number;
  /** Accesses before a key may be predicted (4 = three inter-arrival gaps). Default 4. */
  minHits?: number;
  /**
   * Largest stddev/mean of inter-arrival times for a key to count as regular. Default 0.2: the
   * brief's 0.3 lets about 1 % of a random (Poisson) rare key's accesses pass as periodic, 0.2
   * about 0.2 %, while cron-like clients (a few % jitter) stay far below either.
   */
  maxCv?: number;
  /** Time a recompute needs before it can be read (model latency plus margin). Default 5 000. */
  leadMs?: number;
  /** Lateness/earliness allowed for a regular key, in standard deviations of its inter-arrival time. Default 2. */
  jitterSigmas?: number;
  /** Weight of the newest gap in the exponentially weighted mean and variance of inter-arrival times. Default 0.3. */
  alpha?: number;
  /** Requests closer than this to the previous one are one arrival (concurrent identical requests). Default 1 000. */
  minGapMs?: number;
  /** Half-life of the decayed access count that estimates an irregular key's rate. Default 600 000 (10 min). */
  frequencyHalfLifeMs?: number;
  /** Probability of ≥ 1 access within one TTL an irregular key needs to be refreshed; > 1 disables that path. Default 0.5. */
  minHitProbability?: number;
  /**
   * May `due()` return a regular key whose entry has already expired (predictive warming)? The
   * caller must then be able to rebuild the request without the cached entry. With `false`,
   * keys are refreshed only while their entry is still cached, and only when one recompute
   * bridges to the predicted access. Default true.
   */
  warmExpired?: boolean;
  /** Budget: at most this many refreshes per budget interval (`due()` and `shouldRefreshOnHit()` together). Default 50. */
  maxRefreshesPerInterval?: number;
  /** Length of a budget interval. Default 1 000. */
  budgetIntervalMs?: number;
}

/** Counters for metrics. */
export interface RefreshPredictorStats {
  /** Keys with statistics in memory (≤ maxTrackedKeys). */
  trackedKeys: number;
  /** Tracked keys with at least minHits accesses. */
  hotKeys: number;
  /** Scheduled checks waiting in the queue (bounded by about 2 × maxTrackedKeys). */
  scheduled: number;
  /** Refreshes handed out in total (`due()` plus approved `shouldRefreshOnHit()`). */
  predictions: number;
  /** Of those, for regular keys (predicted arrival). */
  regularPredictions: number;
  /** Of those, for frequent irregular keys. */
  frequentPredictions: number;
  /** Refreshes postponed to a later budget interval because the budget was spent. */
  budgetDeferrals: number;
}

interface KeyStats extends AccessStats {
  expiresAt: number | undefined;
  storedAt: number | undefined;
  /** The current entry was read since it was stored. */
  read: boolean;
  ttl: number | undefined;
  pending: boolean;
  /** Bumped on every change, so stale entries in the schedule are recognised and skipped. */
  version: number;
}

interface Plan {
  kind: 'regular' | 'frequent';
  dueAt: number;
  deadline: number;
}

interface Scheduled {
  at: number;
  key: string;
  version: number;
}

const DEFAULTS: Required<RefreshPredictorOptions> = {
  maxTrackedKeys: 10_000,
  minHits: 4,
  maxCv: 0.2,
  leadMs: 5_000,
  jitterSigmas: 2,
  alpha: 0.3,
  minGapMs: 1_000,
  frequencyHalfLifeMs: 600_000,
  minHitProbability: 0.5,
  warmExpired: true,
  maxRefreshesPerInterval: 50,
  budgetIntervalMs: 1_000,
};

function check(ok: boolean, message: string): void {
  if (!ok) throw new RangeError(`RefreshPredictor: ${message}`);
}

/** Learns per-key access patterns and decides which cache entries to recompute ahead of need. */
export class RefreshPredictor {
  private readonly o: Required<RefreshPredictorOptions>;
  private readonly model: AccessModel;
  private readonly keys: LRUCache<string, KeyStats>;
  /** Min-heap of checks by time; lazy deletion through KeyStats.version. */
  private readonly heap = new MinHeap<Scheduled>();
  private hot = 0;
  private budgetWindow = -1;
  private budgetUsed = 0;
  private readonly counters = { predictions: 0, regularPredictions: 0, frequentPredictions: 0, budgetDeferrals: 0 };

  constructor(options: RefreshPredictorOptions = {}) {
    this.o = { ...DEFAULTS, ...options };
    const o = this.o;
    check(Number.isInteger(o.maxTrackedKeys) && o.maxTrackedKeys > 0, 'maxTrackedKeys must be a positive integer');
    check(Number.isInteger(o.minHits) && o.minHits >= 2, 'minHits must be an integer >= 2 (one gap needs two hits)');
    check(o.maxCv >= 0, 'maxCv must be >= 0');
    check(o.leadMs >= 0 && o.jitterSigmas >= 0, 'leadMs and jitterSigmas must be >= 0');
    check(o.alpha > 0 && o.alpha <= 1, 'alpha must be in (0, 1]');
    check(o.frequencyHalfLifeMs > 0, 'frequencyHalfLifeMs must be > 0');
    check(o.minGapMs >= 0, 'minGapMs must be >= 0');
    check(o.minHitProbability > 0, 'minHitProbability must be > 0');
    check(
      Number.isInteger(o.maxRefreshesPerInterval) && o.maxRefreshesPerInterval > 0,
      'maxRefreshesPerInterval must be a positive integer',
    );
    check(o.budgetIntervalMs > 0, 'budgetIntervalMs must be > 0');
    this.model = {
      alpha: o.alpha,
      maxCv: o.maxCv,
      minGapMs: o.minGapMs,
      halfLifeMs: o.frequencyHalfLifeMs,
      foldAfterGaps: o.minHits - 1,
    };
    this.keys = new LRUCache<string, KeyStats>({
      max: o.maxTrackedKeys,
      // Stats objects are mutated in place, never re-set, so dispose means eviction or delete.
      dispose: (s) => {
        if (s.count >= this.o.minHits) this.hot--;
      },
    });
  }

  /**
   * A request for `key` arrived (hit or miss). Updates count, inter-arrival mean and variance and
   * the decayed frequency. Pass `hitExpiresAt` when the request was served from cache, so an entry
   * refreshed by another gateway is learnt too.
   */
  recordAccess(key: string, now: number, hitExpiresAt?: number): void {
    let s = this.keys.get(key);
    if (!s) {
      s = this.fresh(now);
      this.keys.set(key, s);
    }
    recordArrival(s, now, this.model);
    if (s.storedAt !== undefined && now >= s.storedAt) s.read = true;
    if (s.count === this.o.minHits) this.hot++;
    if (hitExpiresAt !== undefined && hitExpiresAt > (s.expiresAt ?? -Infinity)) {
      // Someone (another gateway) stored a newer entry: it counts as a store, read now.
      s.expiresAt = hitExpiresAt;
      s.storedAt = now;
      s.read = true;
      s.pending = false;
    }
    this.reschedule(key, s);
  }

  /** The cache stored (or refreshed) `key`; the entry expires at `expiresAt`. Re-arms the key. */
  recordStore(key: string, expiresAt: number, now: number): void {
    let s = this.keys.peek(key);
    if (!s) {
      s = this.fresh(now);
      this.keys.set(key, s);
    }
    s.expiresAt = expiresAt;
    s.storedAt = now;
    s.read = false;
    if (expiresAt > now) s.ttl = expiresAt - now;
    s.pending = false;
    this.reschedule(key, s);
  }

  /**
   * Keys to recompute now, most urgent first, within the remaining budget. Call it periodically
   * (e.g. every second); a key missed because the budget ran out comes back on a later call while
   * recomputing it can still help. Each returned key must eventually be followed by
   * `recordStore` (success) — until then it is not returned again.
   */
  due(now: number): string[] {
    const out: string[] = [];
    while ((this.heap.peek()?.at ?? Infinity) <= now) {
      const top = this.heap.peek()!;
      const s = this.keys.peek(top.key);
      if (!s || s.version !== top.version) {
        this.heap.pop();
        continue;
      }
      const plan = this.plan(s);
      if (!plan || now > plan.deadline || (plan.kind === 'frequent' && !this.frequentEnough(s, now))) {
        this.heap.pop();
        continue;
      }
      if (plan.dueAt > now) {
        this.heap.pop();
        this.push({ at: plan.dueAt, key: top.key, version: s.version });
        continue;
      }
      if (!this.takeBudget(now)) {
        this.counters.budgetDeferrals++;
        break;
      }
      this.heap.pop();
      this.approve(s, plan.kind);
      out.push(top.key);
    }
    return out;
  }

  /**
   * Refresh-on-read: a hit on `key` whose entry expires at `expiresAt`. True when the key is hot
   * (regular, or frequent enough), the entry expires within the lead window and the budget
   * allows; the caller then recomputes in the background and calls `recordStore`. Call it after
   * `recordAccess` for the same request.
   */
  shouldRefreshOnHit(key: string, expiresAt: number, now: number): boolean {
    const s = this.keys.peek(key);
    if (!s || s.pending || s.count < this.o.minHits || s.gaps === 0) return false;
    if (expiresAt - now > this.o.leadMs + this.o.jitterSigmas * gapStd(s, this.model)) return false;
    const regular = isRegular(s, this.model);
    if (!regular && !this.frequentEnough({ ...s, expiresAt, read: true }, now)) return false;
    if (!this.takeBudget(now)) {
      this.counters.budgetDeferrals++;
      return false;
    }
    this.approve(s, regular ? 'regular' : 'frequent');
    return true;
  }

  /** Counters for metrics; cheap (no scan). */
  stats(): RefreshPredictorStats {
    return { trackedKeys: this.keys.size, hotKeys: this.hot, scheduled: this.heap.size, ...this.counters };
  }

  private fresh(now: number): KeyStats {
    const base = newAccessStats(now);
    return {
      ...base,
      expiresAt: undefined,
      storedAt: undefined,
      read: false,
      ttl: undefined,
      pending: false,
      version: 0,
    };
  }

  /**
   * An irregular key is renewed when P(≥ 1 access within one TTL) ≥ minHitProbability under a
   * Poisson model with a conservative rate, and the expiring entry was read since it was stored.
   */
  private frequentEnough(s: KeyStats, now: number): boolean {
    if (s.ttl === undefined || !s.read) return false;
    return 1 - Math.exp(-rateLowerBound(s, now, this.model) * s.ttl) >= this.o.minHitProbability;
  }

  /** When (if ever) the key should be refreshed, given its current statistics and entry. */
  private plan(s: KeyStats): Plan | undefined {
    if (s.pending || s.count < this.o.minHits || s.gaps === 0) return undefined;
    const slack = this.o.jitterSigmas * gapStd(s, this.model);
    if (isRegular(s, this.model)) {
      const next = s.lastAccess + s.meanGap;
      // The cached entry will still serve the predicted access, late arrival included.
      if (s.expiresAt !== undefined && s.expiresAt >= next + slack) return undefined;
      // Early enough for an early arrival; but when the TTL is shorter than the arrival window,
      // late enough that the new entry still stands at the late end of it.
      const early = next - this.o.leadMs - slack;
      const dueAt = s.ttl === undefined ? early : Math.min(next - this.o.leadMs, Math.max(early, next + slack - s.ttl));
      // Stored inside this prediction's window already: one refresh per predicted access, even
      // when the window (lead + jitter) is longer than the TTL and the refresh cannot cover it.
      if (s.storedAt !== undefined && s.storedAt >= dueAt) return undefined;
      if (this.o.warmExpired) return { kind: 'regular', dueAt, deadline: next + slack };
      if (s.expiresAt === undefined || s.ttl === undefined) return undefined;
      const at = Math.min(dueAt, s.expiresAt - this.o.leadMs);
      // Only while the entry exists, and only if one recompute reaches the access.
      if (at + s.ttl < next + slack) return undefined;
      return { kind: 'regular', dueAt: at, deadline: s.expiresAt };
    }
    if (s.expiresAt === undefined || s.ttl === undefined || this.o.minHitProbability > 1) return undefined;
    return { kind: 'frequent', dueAt: s.expiresAt - this.o.leadMs, deadline: s.expiresAt };
  }

  private reschedule(key: string, s: KeyStats): void {
    s.version++;
    const plan = this.plan(s);
    if (plan) this.push({ at: plan.dueAt, key, version: s.version });
  }

  private approve(s: KeyStats, kind: Plan['kind']): void {
    s.pending = true;
    s.version++;
    this.counters.predictions++;
    if (kind === 'regular') this.counters.regularPredictions++;
    else this.counters.frequentPredictions++;
  }

  private takeBudget(now: number): boolean {
    const window = Math.floor(now / this.o.budgetIntervalMs);
    if (window !== this.budgetWindow) {
      this.budgetWindow = window;
      this.budgetUsed = 0;
    }
    if (this.budgetUsed >= this.o.maxRefreshesPerInterval) return false;
    this.budgetUsed++;
    return true;
  }

  private push(e: Scheduled): void {
    // Every change pushes a new entry and leaves the old one stale; purge the stale ones before
    // the heap outgrows the key bound, so memory stays O(maxTrackedKeys).
    if (this.heap.size >= 2 * this.o.maxTrackedKeys + 64) {
      this.heap.retain((x) => this.keys.peek(x.key)?.version === x.version);
    }
    this.heap.push(e);
  }
}
