import type { Category, RequestName } from '../k6/lib/mix.js';

/** One request as a generator saw it. */
export interface Sample {
  /** When it was due (open loop) or sent (Locust), ms since the run began. */
  t: number;
  name: RequestName;
  category: Category;
  latencyMs: number;
  ok: boolean;
  /** Why it failed (`429 RATE_LIMITED`, `no answer`, …); empty when ok. */
  kind: string;
}

export interface Percentiles {
  count: number;
  p50: number;
  p95: number;
  p99: number;
}

export interface Summary {
  requests: number;
  seconds: number;
  ratePerS: number;
  overall: Percentiles;
  hit: Percentiles;
  miss: Percentiles;
  uncached: Percentiles;
  byName: Record<string, Percentiles>;
  failed: number;
  errorRate: number;
  errors: Record<string, number>;
  hits: number;
  misses: number;
  /** hits ÷ (hits + misses): of the answers the cache could have given, the share it gave. */
  hitRate: number;
}

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function percentiles(latencies: number[]): Percentiles {
  const sorted = Float64Array.from(latencies).sort();
  return {
    count: sorted.length,
    p50: percentile(sorted, 0.5),
    p95: percentile(sorted, 0.95),
    p99: percentile(sorted, 0.99),
  };
}

/** Figures of the samples due in [fromMs, toMs). Failed requests count in the error rate, not in the latencies. */
export function summarize(samples: Sample[], fromMs = 0, toMs = Infinity): Summary {
  const inWindow = samples.filter((s) => s.t >= fromMs && s.t < toMs);
  const ok = inWindow.filter((s) => s.ok);
  const lat = (list: Sample[]) => percentiles(list.map((s) => s.latencyMs));
  const byName: Record<string, Percentiles> = {};
  for (const name of new Set(ok.map((s) => s.name))) byName[name] = lat(ok.filter((s) => s.name === name));
  const errors: Record<string, number> = {};
  for (const s of inWindow) if (!s.ok) errors[`${s.name}: ${s.kind}`] = (errors[`${s.name}: ${s.kind}`] ?? 0) + 1;
  const hits = ok.filter((s) => s.category === 'hit').length;
  const misses = ok.filter((s) => s.category === 'miss').length;
  const first = inWindow.reduce((m, s) => Math.min(m, s.t), Infinity);
  const last = inWindow.reduce((m, s) => Math.max(m, s.t), -Infinity);
  const seconds = Number.isFinite(toMs) ? (toMs - fromMs) / 1000 : Math.max(1e-3, (last - first) / 1000);
  const failed = inWindow.length - ok.length;
  return {
    requests: inWindow.length,
    seconds,
    ratePerS: inWindow.length / seconds,
    overall: lat(ok),
    hit: lat(ok.filter((s) => s.category === 'hit')),
    miss: lat(ok.filter((s) => s.category === 'miss')),
    uncached: lat(ok.filter((s) => s.category === 'uncached')),
    byName,
    failed,
    errorRate: inWindow.length > 0 ? failed / inWindow.length : 0,
    errors,
    hits,
    misses,
    hitRate: hits + misses > 0 ? hits / (hits + misses) : NaN,
  };
}

export interface Thresholds {
  p95Ms?: number;
  maxErrorRate?: number;
  minCacheHits?: number;
}

/** The thresholds a run failed, each as a sentence; empty when it passed. */
export function failedThresholds(s: Summary, t: Thresholds): string[] {
  const out: string[] = [];
  if (s.requests === 0) out.push('no request completed');
  if (t.p95Ms !== undefined && !(s.overall.p95 < t.p95Ms)) {
    out.push(`p95 ${s.overall.p95.toFixed(1)} ms is not below ${t.p95Ms} ms`);
  }
  if (t.maxErrorRate !== undefined && s.errorRate > t.maxErrorRate) {
    out.push(
      `${s.failed} of ${s.requests} requests failed (${(s.errorRate * 100).toFixed(2)} %, allowed ${t.maxErrorRate * 100} %)`,
    );
  }
  if (t.minCacheHits !== undefined && s.hits < t.minCacheHits) {
    out.push(`${s.hits} answers came from the cache (at least ${t.minCacheHits} expected)`);
  }
  return out;
}

/** Reads the samples a locustfile wrote (`t_epoch_ms,name,category,latency_ms,status,kind`), times relative to `originMs`. */
export function parseSampleLines(text: string, originMs: number): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('t_epoch_ms')) continue;
    const [t, name, category, latency, ok, ...kind] = line.split(',');
    out.push({
      t: Number(t) - originMs,
      name: name as RequestName,
      category: category as Category,
      latencyMs: Number(latency),
      ok: ok === '1',
      kind: kind.join(','),
    });
  }
  return out;
}

/** Users at which p95 crosses `ms`, interpolated on log scales between the steps around it. */
export function crossing(rows: { users: number; p95_ms: number }[], limitMs: number): number | undefined {
  for (let i = 0; i < rows.length; i++) {
    const b = rows[i]!;
    if (!(b.p95_ms >= limitMs)) continue;
    const a = rows[i - 1];
    if (!a) return b.users;
    const f = (Math.log(limitMs) - Math.log(a.p95_ms)) / (Math.log(b.p95_ms) - Math.log(a.p95_ms));
    return Math.round(Math.exp(Math.log(a.users) + f * (Math.log(b.users) - Math.log(a.users))));
  }
  return undefined;
}
