import { mulberry32 } from '../scripts/models/prng.js';
import { RefreshPredictor, type RefreshPredictorOptions } from '../src/cache/refresh-ahead.js';

/** Parameters of the generated access trace. Times in seconds. */
export interface TraceParams {
  seed: number;
  durationS: number;
  /** Keys requested on a schedule (a client polling every P seconds). */
  periodicKeys: number;
  /** Periods are log-uniform in [minPeriodS, maxPeriodS]. */
  minPeriodS: number;
  maxPeriodS: number;
  /** Each arrival is shifted uniformly by ±jitter·P. */
  jitter: number;
  /** Probability that a client skips one beat. */
  skipProbability: number;
  /** Share of periodic clients that stop for good at a random time in the second half. */
  stopShare: number;
  /** Background traffic: Poisson arrivals over a Zipf(s) key space. */
  zipfKeys: number;
  zipfS: number;
  zipfRatePerS: number;
}

/** One request of the trace. */
export interface Access {
  atMs: number;
  key: string;
  /** The client's period, for periodic keys. */
  periodS?: number;
}

/** Generates the periodic + Zipf trace, sorted by time. */
export function generateTrace(p: TraceParams): Access[] {
  const out: Access[] = [];
  const end = p.durationS * 1000;
  // Separate streams, so changing one part of the trace does not reshuffle the other.
  const rp = mulberry32(p.seed);
  const rz = mulberry32(p.seed ^ 0x9e3779b9);
  const ratio = p.maxPeriodS / p.minPeriodS;
  for (let k = 0; k < p.periodicKeys; k++) {
    const period = p.minPeriodS * Math.pow(ratio, rp()) * 1000;
    const stopAt = rp() < p.stopShare ? end * (0.5 + 0.5 * rp()) : end;
    for (let beat = rp() * period; beat < stopAt; beat += period) {
      if (rp() < p.skipProbability) continue;
      const at = Math.round(beat + (2 * rp() - 1) * p.jitter * period);
      if (at >= 0 && at < stopAt) out.push({ atMs: at, key: `p:${k}`, periodS: period / 1000 });
    }
  }
  const cdf = new Float64Array(p.zipfKeys);
  let sum = 0;
  for (let i = 0; i < p.zipfKeys; i++) cdf[i] = sum += Math.pow(i + 1, -p.zipfS);
  for (let t = 0; ;) {
    t += -Math.log(1 - rz()) * (1000 / p.zipfRatePerS);
    if (t >= end) break;
    const u = rz() * sum;
    let lo = 0;
    let hi = p.zipfKeys - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    out.push({ atMs: Math.round(t), key: `z:${lo + 1}` });
  }
  return out.sort((a, b) => a.atMs - b.atMs);
}

/** How the simulated gateways keep the cache warm. */
export interface Policy {
  name: string;
  /** Undefined: plain TTL (miss → compute → store). */
  predictor?: RefreshPredictorOptions;
  /** Gateways, each with its own predictor that sees only the requests it serves. Default 1. */
  gateways?: number;
}

export interface SimParams {
  ttlS: number;
  /** Time a computation (miss or refresh) takes before its entry is stored. */
  computeMs: number;
  /** How often each gateway calls `due()`. */
  tickMs: number;
  seed: number;
}

/** Figures of one simulated run. */
export interface SimResult {
  policy: string;
  ttlS: number;
  requests: number;
  hits: number;
  periodicRequests: number;
  periodicHits: number;
  /** Periodic keys whose period exceeds the TTL: plain TTL misses every one of their requests. */
  longRequests: number;
  longHits: number;
  misses: number;
  /** Model computations started because of a miss (concurrent misses of one key share one). */
  missComputations: number;
  /** Model computations started by refresh-ahead. */
  refreshes: number;
  /** Refreshed entries replaced or expired without a single read. */
  wastedRefreshes: number;
  /** Refreshed entries still unread but alive at the end of the trace (not counted either way). */
  openRefreshes: number;
  trackedKeys: number;
  hotKeys: number;
  budgetDeferrals: number;
  regularPredictions: number;
  frequentPredictions: number;
}

interface Entry {
  expiresAt: number;
  refresh: boolean;
  reads: number;
}

interface Flight {
  key: string;
  doneAt: number;
  refresh: boolean;
  /** Gateways waiting for this result; each records the store. */
  gateways: Set<number>;
  /** A request that missed joined this computation: its result was used. */
  joined: boolean;
}

/**
 * Replays `trace` against a shared cache on a virtual clock. Every computation (miss or refresh)
 * lands `computeMs` after it starts; until then the old entry (if still valid) serves, and
 * further misses of that key join the computation in flight (as BullMQ jobId coalescing does).
 */
export function simulate(trace: Access[], policy: Policy, sim: SimParams): SimResult {
  const ttl = sim.ttlS * 1000;
  const n = policy.gateways ?? 1;
  const gws = policy.predictor ? Array.from({ length: n }, () => new RefreshPredictor(policy.predictor)) : [];
  const pick = mulberry32(sim.seed ^ 0x5bd1e995);
  const cache = new Map<string, Entry>();
  const inFlight = new Map<string, Flight>();
  const queue: Flight[] = []; // constant compute time: completions come in start order
  let head = 0;
  const r: SimResult = {
    policy: policy.name,
    ttlS: sim.ttlS,
    requests: 0,
    hits: 0,
    periodicRequests: 0,
    periodicHits: 0,
    longRequests: 0,
    longHits: 0,
    misses: 0,
    missComputations: 0,
    refreshes: 0,
    wastedRefreshes: 0,
    openRefreshes: 0,
    trackedKeys: 0,
    hotKeys: 0,
    budgetDeferrals: 0,
    regularPredictions: 0,
    frequentPredictions: 0,
  };

  const start = (key: string, now: number, refresh: boolean, gw: number): void => {
    const f = inFlight.get(key);
    if (f) {
      f.gateways.add(gw);
      f.joined ||= !refresh;
      return;
    }
    const flight: Flight = { key, doneAt: now + sim.computeMs, refresh, gateways: new Set([gw]), joined: false };
    inFlight.set(key, flight);
    queue.push(flight);
    if (refresh) r.refreshes++;
    else r.missComputations++;
  };
  const land = (upTo: number): void => {
    while (head < queue.length && queue[head]!.doneAt <= upTo) {
      const f = queue[head++]!;
      const old = cache.get(f.key);
      if (old?.refresh && old.reads === 0) r.wastedRefreshes++;
      cache.set(f.key, { expiresAt: f.doneAt + ttl, refresh: f.refresh, reads: f.joined ? 1 : 0 });
      inFlight.delete(f.key);
      for (const g of f.gateways) gws[g]?.recordStore(f.key, f.doneAt + ttl, f.doneAt);
    }
  };

  let nextTick = 0;
  const tickUntil = (t: number): void => {
    for (; nextTick <= t; nextTick += sim.tickMs) {
      land(nextTick);
      gws.forEach((p, g) => {
        for (const key of p.due(nextTick)) start(key, nextTick, true, g);
      });
    }
  };

  for (const a of trace) {
    if (gws.length > 0) tickUntil(a.atMs);
    land(a.atMs);
    const gw = n > 1 ? Math.floor(pick() * n) : 0;
    const e = cache.get(a.key);
    const hit = e !== undefined && e.expiresAt > a.atMs;
    gws[gw]?.recordAccess(a.key, a.atMs, hit ? e.expiresAt : undefined);
    const periodic = a.periodS !== undefined;
    const long = periodic && a.periodS! > sim.ttlS;
    r.requests++;
    if (periodic) r.periodicRequests++;
    if (long) r.longRequests++;
    if (hit) {
      e.reads++;
      r.hits++;
      if (periodic) r.periodicHits++;
      if (long) r.longHits++;
    } else {
      r.misses++;
      start(a.key, a.atMs, false, gw);
    }
  }
  const end = trace.at(-1)?.atMs ?? 0;
  for (const e of cache.values()) {
    if (!e.refresh || e.reads > 0) continue;
    if (e.expiresAt <= end) r.wastedRefreshes++;
    else r.openRefreshes++;
  }
  r.openRefreshes += [...inFlight.values()].filter((f) => f.refresh).length;
  for (const p of gws) {
    const s = p.stats();
    r.trackedKeys += s.trackedKeys;
    r.hotKeys += s.hotKeys;
    r.budgetDeferrals += s.budgetDeferrals;
    r.regularPredictions += s.regularPredictions;
    r.frequentPredictions += s.frequentPredictions;
  }
  return r;
}
