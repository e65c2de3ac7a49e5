import { cpus } from 'node:os';
import { type Percentiles, percentiles } from './stats.js';
import {
  CACHE_METRIC,
  coresBetween,
  counterSum,
  type CpuPoint,
  cpuPoint,
  type Histogram,
  histogramDelta,
  histogramQuantileMs,
  parseDurationHistogram,
  scrape,
} from './server-view.js';

/** One look at the cluster: its gateways' histogram and cache counters, and every group's CPU. */
export interface Observation {
  /** ms since the run began */
  t: number;
  histogram?: Histogram;
  cacheHits?: number;
  cpu: CpuPoint;
}

/** What the cluster saw between two observations. */
export interface ServerWindow {
  fromT: number;
  toT: number;
  requests: number;
  p50: number;
  p95: number;
  p99: number;
  /** Cache hits the gateways counted (in-process and Redis level). */
  cacheHits: number;
  /** Cores used by each CPU group, `machine` (all busy time) and `other` (the machine less our groups). */
  cores: Record<string, number>;
}

/** The infer, memory and job routes; not /healthz, /readyz or the probe's own path. */
const measuredRoutes = (labels: string) => !/route="[^"]*(healthz|readyz|metrics)/.test(labels);

/**
 * Observes the cluster every `intervalMs` while a generator runs: scrapes the gateways' admin
 * ports (when known) and reads CPU times from /proc.
 */
export class Monitor {
  readonly observations: Observation[] = [];
  private timer?: NodeJS.Timeout;
  private pending: Promise<void> = Promise.resolve();
  /** When set, this process's own CPU (without its children) is reported under that group name. */
  selfGroup?: string;

  constructor(
    private readonly originMs: number,
    private readonly adminUrls: () => string[],
    private readonly groups: () => Record<string, number[]>,
  ) {}

  async observe(): Promise<Observation> {
    const urls = this.adminUrls();
    let histogram: Histogram | undefined;
    let cacheHits: number | undefined;
    if (urls.length > 0) {
      try {
        const text = await scrape(urls);
        histogram = parseDurationHistogram(text, measuredRoutes);
        cacheHits = counterSum(text, CACHE_METRIC, 'result="hit"');
      } catch {
        // A gateway restarting mid-run: this window has the CPU view only.
      }
    }
    const cpu = cpuPoint(this.groups());
    if (this.selfGroup) {
      const own = process.cpuUsage();
      cpu.groups[this.selfGroup] = (own.user + own.system) / 1000;
    }
    const o = { t: Date.now() - this.originMs, histogram, cacheHits, cpu };
    this.observations.push(o);
    return o;
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      this.pending = this.pending.then(() => this.observe().then(() => undefined));
    }, intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.pending;
  }
}

/** The cluster's view between two observations. */
export function serverWindow(a: Observation, b: Observation, cores = cpus().length): ServerWindow {
  const h = a.histogram && b.histogram ? histogramDelta(b.histogram, a.histogram) : undefined;
  return {
    fromT: a.t,
    toT: b.t,
    requests: h?.count ?? NaN,
    p50: h ? histogramQuantileMs(h, 0.5) : NaN,
    p95: h ? histogramQuantileMs(h, 0.95) : NaN,
    p99: h ? histogramQuantileMs(h, 0.99) : NaN,
    cacheHits: a.cacheHits !== undefined && b.cacheHits !== undefined ? b.cacheHits - a.cacheHits : NaN,
    cores: coresBetween(a.cpu, b.cpu, cores),
  };
}

/** Consecutive windows of a monitor's observations. */
export function serverWindows(observations: Observation[]): ServerWindow[] {
  return observations.slice(1).map((b, i) => serverWindow(observations[i]!, b));
}

/**
 * An independent low-rate client: one repeated request (a cache hit after its first) every
 * `intervalMs` on a key of its own, timed with a monotonic clock. What a hit costs as a light
 * client sees it, while the load generator and the cluster share the cores.
 */
export class Probe {
  private readonly latencies: number[] = [];
  private failures = 0;
  private timer?: NodeJS.Timeout;
  private inFlight: Promise<void> = Promise.resolve();

  constructor(
    private readonly url: string,
    private readonly headers: Record<string, string>,
    private readonly body: string,
  ) {}

  private async once(record: boolean): Promise<void> {
    const started = performance.now();
    try {
      const res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.headers },
        body: this.body,
        signal: AbortSignal.timeout(10_000),
      });
      await res.arrayBuffer();
      if (!record) return;
      if (res.status === 200 && res.headers.get('x-cache') === 'HIT') this.latencies.push(performance.now() - started);
      else this.failures++;
    } catch {
      if (record) this.failures++;
    }
  }

  /** Fills the cache with the probe's request, then sends it every `intervalMs`. */
  async start(intervalMs: number): Promise<void> {
    await this.once(false);
    this.timer = setInterval(() => {
      this.inFlight = this.once(true);
    }, intervalMs);
  }

  async stop(): Promise<{ hit: Percentiles; failures: number }> {
    clearInterval(this.timer);
    await this.inFlight;
    return { hit: percentiles(this.latencies), failures: this.failures };
  }
}
