import { readFileSync } from 'node:fs';
import { treeCpuMs } from '../../bench/lib/proc-cpu.js';
import { METRICS } from '../../src/observability/catalogue.js';

/**
 * The cluster's own view of a run, next to the generator's: the gateways' request-duration
 * histograms (scraped from their admin ports, or asked of Prometheus) and the CPU time of the
 * cluster, the generator, Redis and the rest of the machine, from /proc.
 */

/** Cumulative bucket counts by upper bound (seconds; Infinity for +Inf), summed over every scraped series. */
export interface Histogram {
  buckets: Map<number, number>;
  count: number;
  sum: number;
}

/** The histogram every gateway keeps of the requests it served (the metric catalogue's name). */
export const DURATION_METRIC = METRICS.httpRequestDuration.name;
/** What the gateways' caches answered, by X-Cache result. */
export const CACHE_METRIC = METRICS.cacheRequests.name;
const DURATION = new RegExp(`^(${DURATION_METRIC})_(bucket|count|sum)\\{([^}]*)\\}\\s+(\\S+)`);

/** Sums the request-duration histograms in Prometheus text (several gateways' texts may be concatenated). */
export function parseDurationHistogram(text: string, filter: (labels: string) => boolean = () => true): Histogram {
  const h: Histogram = { buckets: new Map(), count: 0, sum: 0 };
  for (const line of text.split('\n')) {
    const m = DURATION.exec(line);
    if (!m || !filter(m[3]!)) continue;
    const value = Number(m[4]);
    if (m[2] === 'count') h.count += value;
    else if (m[2] === 'sum') h.sum += value;
    else {
      const le = /(?:^|,)le="([^"]+)"/.exec(m[3]!)?.[1];
      if (le === undefined) continue;
      const bound = le === '+Inf' ? Infinity : Number(le);
      h.buckets.set(bound, (h.buckets.get(bound) ?? 0) + value);
    }
  }
  return h;
}

/** `after − before`: the requests of one window. */
export function histogramDelta(after: Histogram, before: Histogram): Histogram {
  const buckets = new Map<number, number>();
  for (const [le, v] of after.buckets) buckets.set(le, v - (before.buckets.get(le) ?? 0));
  return { buckets, count: after.count - before.count, sum: after.sum - before.sum };
}

/**
 * The q-quantile in ms, interpolated linearly within its bucket as Prometheus's
 * histogram_quantile does; NaN without observations. Only as fine as the buckets.
 */
export function histogramQuantileMs(h: Histogram, q: number): number {
  const bounds = [...h.buckets.keys()].sort((a, b) => a - b);
  const total = h.buckets.get(Infinity) ?? h.count;
  if (!(total > 0) || bounds.length === 0) return NaN;
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const bound of bounds) {
    const count = h.buckets.get(bound)!;
    if (count >= rank) {
      if (bound === Infinity) return prevBound * 1000; // above the highest finite bucket
      const inBucket = count - prevCount;
      const fraction = inBucket > 0 ? (rank - prevCount) / inBucket : 1;
      return (prevBound + (bound - prevBound) * fraction) * 1000;
    }
    prevBound = bound;
    prevCount = count;
  }
  return NaN;
}

/** Concatenated `/metrics` of the given admin URLs (http://host:port). */
export async function scrape(adminUrls: string[]): Promise<string> {
  const texts = await Promise.all(
    adminUrls.map(async (url) => {
      const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
      if (!res.ok) throw new Error(`${url}/metrics answered ${res.status}`);
      return res.text();
    }),
  );
  return texts.join('\n');
}

/** Sum of a counter's samples whose labels include `labelPart`. */
export function counterSum(text: string, name: string, labelPart = ''): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labelPart && !line.includes(labelPart)) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/**
 * The same quantile from Prometheus (PROMETHEUS_URL), over the `windowS` seconds that end at
 * `endS`: whatever gateways it scrapes (its own configuration decides which cluster that is).
 */
export async function prometheusQuantileMs(
  prometheusUrl: string,
  q: number,
  windowS: number,
  endS: number,
): Promise<number> {
  const query =
    `histogram_quantile(${q}, sum by (le) (increase(${DURATION_METRIC}_bucket` +
    `[${Math.max(1, Math.round(windowS))}s])))`;
  const url = `${prometheusUrl.replace(/\/$/, '')}/api/v1/query?query=${encodeURIComponent(query)}&time=${endS}`;
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { status: string; data?: { result?: { value: [number, string] }[] } };
  if (body.status !== 'success') throw new Error(`Prometheus answered ${res.status}: ${JSON.stringify(body)}`);
  const value = body.data?.result?.[0]?.value[1];
  return value === undefined ? NaN : Number(value) * 1000;
}

/**
 * Jiffies of the whole machine (/proc/stat): `busy` is the time processes ran (user, nice,
 * system), leaving out interrupts (loopback traffic's softirq time lands there, not in any
 * process) and steal; `total` is every column.
 */
function machineTicks(): { busy: number; total: number } {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const busy = (cpu[0] ?? 0) + (cpu[1] ?? 0) + (cpu[2] ?? 0);
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy, total };
}

export interface CpuPoint {
  atMs: number;
  /** CPU time so far (ms) of each group and its descendants. */
  groups: Record<string, number>;
  machineBusyTicks: number;
  machineTotalTicks: number;
}

export function cpuPoint(groups: Record<string, number[]>, atMs = Date.now()): CpuPoint {
  const m = machineTicks();
  return { atMs, groups: treeCpuMs(groups), machineBusyTicks: m.busy, machineTotalTicks: m.total };
}

/**
 * Cores each group used between two points, `machine`: the cores every process used, and
 * `other`: the processes outside the groups (on a shared machine, other people's work).
 */
export function coresBetween(a: CpuPoint, b: CpuPoint, cores: number): Record<string, number> {
  const seconds = Math.max(1e-3, (b.atMs - a.atMs) / 1000);
  const out: Record<string, number> = {};
  let ours = 0;
  for (const name of Object.keys(b.groups)) {
    const used = Math.max(0, (b.groups[name] ?? 0) - (a.groups[name] ?? 0)) / 1000 / seconds;
    out[name] = used;
    ours += used;
  }
  const dTotal = b.machineTotalTicks - a.machineTotalTicks;
  const busyCores = dTotal > 0 ? ((b.machineBusyTicks - a.machineBusyTicks) / dTotal) * cores : NaN;
  out.machine = busyCores;
  out.other = Math.max(0, busyCores - ours);
  return out;
}
