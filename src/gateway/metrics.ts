import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { METRICS } from '../observability/catalogue.js';
import { counter, gauge, histogram } from '../observability/metrics.js';

export interface GatewayMetrics {
  requestDuration: Histogram<'route' | 'method' | 'status_class'>;
  requestPhase: Histogram<'phase'>;
  inFlight: Gauge;
  /** The same count as `inFlight`, readable at once: the idle bypass asks it on every miss. */
  requestsInFlight: { value: number };
  cacheRequests: Counter<'skill' | 'result'>;
  cacheLookups: Counter<'level' | 'result'>;
  cacheRefreshes: Counter<'outcome'>;
  rateLimit: Counter<'tier' | 'outcome' | 'source'>;
  degraded: Counter<'reason'>;
  redisRoundTrips: Counter<'op'>;
}

/** Circuit breaker states as the brief numbers them. */
export const BREAKER_STATE = { closed: 0, open: 1, 'half-open': 2 } as const;

export interface GatewayGauges {
  pendingJobs: () => number;
  cache: () => { l1Entries: number; l1Bytes: number };
  redisBreaker: () => keyof typeof BREAKER_STATE;
  /** The Postgres pool's connections (pg's totalCount, idleCount, waitingCount) and its limit. */
  pgPool?: () => { total: number; idle: number; waiting: number; max: number };
}

/** The gateway's metrics, from the catalogue (src/observability/catalogue.ts). */
export function createGatewayMetrics(registry: Registry, gauges: GatewayGauges): GatewayMetrics {
  gauge(registry, METRICS.pendingJobs, function collect() {
    this.set(gauges.pendingJobs());
  });
  gauge(registry, METRICS.cacheEntries, function collect() {
    this.set({ level: 'l1' }, gauges.cache().l1Entries);
  });
  gauge(registry, METRICS.cacheBytes, function collect() {
    this.set({ level: 'l1' }, gauges.cache().l1Bytes);
  });
  gauge(registry, METRICS.breakerState, function collect() {
    this.set({ dependency: 'redis' }, BREAKER_STATE[gauges.redisBreaker()]);
  });
  const pool = gauges.pgPool;
  if (pool) {
    gauge(registry, METRICS.pgPoolConnections, function collect() {
      const p = pool();
      this.set({ state: 'idle' }, p.idle);
      this.set({ state: 'busy' }, p.total - p.idle);
    });
    gauge(registry, METRICS.pgPoolWaiting, function collect() {
      this.set(pool().waiting);
    });
    gauge(registry, METRICS.pgPoolMax, function collect() {
      this.set(pool().max);
    });
  }
  const requestDuration = histogram(registry, METRICS.httpRequestDuration);
  // The SLI's series exist from the start, so an idle cluster reads as 0 requests, not as absent.
  requestDuration.zero({ route: '/v1/skills/:skill/infer', method: 'POST', status_class: '2xx' });
  return {
    requestDuration,
    requestPhase: histogram(registry, METRICS.requestPhase),
    inFlight: gauge(registry, METRICS.httpInFlight),
    requestsInFlight: { value: 0 },
    cacheRequests: counter(registry, METRICS.cacheRequests),
    cacheLookups: counter(registry, METRICS.cacheLookups),
    cacheRefreshes: counter(registry, METRICS.cacheRefreshes),
    rateLimit: counter(registry, METRICS.rateLimitDecisions),
    degraded: counter(registry, METRICS.degradedRequests),
    redisRoundTrips: counter(registry, METRICS.redisRoundTrips),
  };
}
