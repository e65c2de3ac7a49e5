import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface GatewayMetrics {
  requestDuration: Histogram<'route' | 'method' | 'status'>;
  inFlight: Gauge;
  cacheLookups: Counter<'level' | 'result'>;
  cacheStale: Counter;
  cacheRefreshes: Counter<'outcome'>;
  rateLimit: Counter<'tier' | 'result' | 'source'>;
  degraded: Counter<'reason'>;
  redisRoundTrips: Counter<'op'>;
}

export interface GatewayGauges {
  pendingJobs: () => number;
  cache: () => { l1Entries: number; l1Bytes: number };
  redisUp: () => boolean;
}

export function createGatewayMetrics(registry: Registry, gauges: GatewayGauges): GatewayMetrics {
  const registers = [registry];
  new Gauge({
    name: 'gateway_jobs_waiting',
    help: 'Synchronous requests waiting for their job to finish',
    registers,
    collect() {
      this.set(gauges.pendingJobs());
    },
  });
  new Gauge({
    name: 'gateway_cache_entries',
    help: 'Entries in the in-process (L1) response cache',
    labelNames: ['level'] as const,
    registers,
    collect() {
      this.set({ level: 'l1' }, gauges.cache().l1Entries);
    },
  });
  new Gauge({
    name: 'gateway_cache_bytes',
    help: 'Approximate bytes held by the in-process (L1) response cache',
    labelNames: ['level'] as const,
    registers,
    collect() {
      this.set({ level: 'l1' }, gauges.cache().l1Bytes);
    },
  });
  new Gauge({
    name: 'gateway_redis_up',
    help: '1 while Redis is usable from this gateway; 0 while degraded',
    registers,
    collect() {
      this.set(gauges.redisUp() ? 1 : 0);
    },
  });
  return {
    requestDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by route, method and status',
      labelNames: ['route', 'method', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    inFlight: new Gauge({ name: 'http_requests_in_flight', help: 'HTTP requests being served', registers }),
    cacheLookups: new Counter({
      name: 'gateway_cache_lookups_total',
      help: 'Response cache lookups by level (l1, redis) and result (hit, miss)',
      labelNames: ['level', 'result'] as const,
      registers,
    }),
    cacheStale: new Counter({
      name: 'gateway_cache_stale_served_total',
      help: 'Answers served from an expired entry because the skill could not answer',
      registers,
    }),
    cacheRefreshes: new Counter({
      name: 'gateway_cache_refreshes_total',
      help: 'Entries recomputed ahead of expiry, by outcome',
      labelNames: ['outcome'] as const,
      registers,
    }),
    rateLimit: new Counter({
      name: 'gateway_rate_limit_decisions_total',
      help: 'Rate limit decisions by tier, result (allowed, limited) and source (redis, local)',
      labelNames: ['tier', 'result', 'source'] as const,
      registers,
    }),
    degraded: new Counter({
      name: 'gateway_degraded_total',
      help: 'Requests answered in a degraded mode, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    redisRoundTrips: new Counter({
      name: 'gateway_redis_round_trips_total',
      help: 'Redis round trips made on the request path, by operation',
      labelNames: ['op'] as const,
      registers,
    }),
  };
}
