/**
 * What one key's access history is reduced to, in O(1) memory: how often (a decayed count) and
 * how regularly (mean and variance of the inter-arrival time) it is requested. Pure functions on
 * a plain record, every one taking `now` in ms.
 */
export interface AccessStats {
  /** Accesses recorded (bursts included). */
  count: number;
  /** Start of the latest arrival (a burst counts from its first request). */
  lastAccess: number;
  firstSeen: number;
  /** Inter-arrival gaps folded into the mean and variance. */
  gaps: number;
  meanGap: number;
  varGap: number;
  /** Access count decayed with the model's half-life, as of `scoreAt`. */
  score: number;
  scoreAt: number;
}

/** Parameters of the statistics. Durations in ms. */
export interface AccessModel {
  /** Weight of the newest gap once the first 1/alpha gaps are in. */
  alpha: number;
  /** Largest stddev/mean of the gaps for the key to count as regular. */
  maxCv: number;
  /** Requests closer than this to the previous arrival belong to it (concurrent identical requests). */
  minGapMs: number;
  /** Half-life of the decayed count. */
  halfLifeMs: number;
  /** Gaps a key needs before a long gap may be read as skipped beats of a regular key. */
  foldAfterGaps: number;
}

/** Statistics of a key first seen at `now`, with no access yet. */
export function newAccessStats(now: number): AccessStats {
  return { count: 0, lastAccess: now, firstSeen: now, gaps: 0, meanGap: 0, varGap: 0, score: 0, scoreAt: now };
}

/** Access count decayed to `now`. */
export function decayedCount(s: AccessStats, now: number, m: AccessModel): number {
  return s.score * Math.pow(2, -Math.max(0, now - s.scoreAt) / m.halfLifeMs);
}

/**
 * Standard deviation of the gaps. While the weights are still 1/n it applies Bessel's n/(n-1),
 * so a handful of random gaps rarely looks regular by chance.
 */
export function gapStd(s: AccessStats, m: AccessModel): number {
  const n = s.gaps;
  return Math.sqrt(n > 1 && n < 1 / m.alpha ? (s.varGap * n) / (n - 1) : s.varGap);
}

/** Coefficient of variation of the gaps at most maxCv (and a real period, not zero). */
export function isRegular(s: AccessStats, m: AccessModel): boolean {
  return s.gaps > 0 && s.meanGap > 0 && gapStd(s, m) <= m.maxCv * s.meanGap;
}

/**
 * Records one access. Updates the decayed count, and the gap mean and variance with an
 * exponentially weighted estimator (West 1979) whose weight starts at 1/n, so the first gaps
 * give the plain mean and variance instead of an EWMA biased towards its first sample. A request
 * within minGapMs of the previous arrival, or older than it (callers' clocks may disagree
 * slightly), is counted but adds no gap.
 */
export function recordArrival(s: AccessStats, now: number, m: AccessModel): void {
  s.score = decayedCount(s, now, m) + 1;
  s.scoreAt = Math.max(s.scoreAt, now);
  s.count++;
  if (s.count === 1) {
    s.lastAccess = now;
    return;
  }
  let gap = now - s.lastAccess;
  if (gap < m.minGapMs) return;
  s.lastAccess = now;
  // A regular client that skipped k-1 beats: learn the period, not the hole.
  const k = Math.round(gap / s.meanGap);
  if (s.gaps >= m.foldAfterGaps && isRegular(s, m) && k >= 2 && Math.abs(gap / k - s.meanGap) <= m.maxCv * s.meanGap) {
    gap /= k;
  }
  s.gaps++;
  const a = Math.max(m.alpha, 1 / s.gaps);
  const d = gap - s.meanGap;
  s.meanGap += a * d;
  s.varGap = (1 - a) * (s.varGap + a * d * d);
}

/**
 * A conservative access rate (per ms): the decayed count n covers an effective window
 * T = H/ln 2 (shorter while the key is younger than that: the bias correction of Adam's moment
 * estimates), and the rate is the one-sigma Poisson lower bound (n − √n)/T, so a chance burst
 * of a rare key (n ≈ 3) does not pass for a hot key.
 */
export function rateLowerBound(s: AccessStats, now: number, m: AccessModel): number {
  const H = m.halfLifeMs;
  const window = (H / Math.LN2) * (1 - Math.pow(2, -Math.max(1, now - s.firstSeen) / H));
  const n = decayedCount(s, now, m);
  return Math.max(0, n - Math.sqrt(n)) / window;
}
