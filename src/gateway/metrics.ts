import { Gauge, Histogram, type Registry } from 'prom-client';

export interface GatewayMetrics {
  requestDuration: Histogram<'route' | 'method' | 'status'>;
  inFlight: Gauge;
}

export function createGatewayMetrics(registry: Registry, pendingJobs: () => number): GatewayMetrics {
  new Gauge({
    name: 'gateway_jobs_waiting',
    help: 'Synchronous requests waiting for their job to finish',
    registers: [registry],
    collect() {
      this.set(pendingJobs());
    },
  });
  return {
    requestDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by route, method and status',
      labelNames: ['route', 'method', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'http_requests_in_flight',
      help: 'HTTP requests being served',
      registers: [registry],
    }),
  };
}
