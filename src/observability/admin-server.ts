import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { readinessMetrics } from './metrics.js';
import { type ReadinessCheck, readinessHttpStatus, runReadiness } from './readiness.js';

export interface AdminOptions {
  role: string;
  instance: string;
  registry: Registry;
  /** What `/readyz` checks; none means ready whenever the process answers. */
  readiness?: ReadinessCheck[];
  /** True once the process is stopping: `/readyz` answers 503 so it is taken out of rotation. */
  isShuttingDown?: () => boolean;
}

export interface AdminServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/**
 * A role's internal admin port: `/metrics` for Prometheus, `/healthz` (alive) and `/readyz`
 * (every dependency, with the reasons) for the supervisor and Kubernetes probes. It is never
 * behind the public nginx port, so it may name instances and carry drivers' messages.
 */
export async function serveAdmin(opts: AdminOptions, host: string, port: number): Promise<AdminServer> {
  const identity = { role: opts.role, instance: opts.instance };
  // What /readyz says, also as metrics (skillserve_readiness_state, skillserve_readiness_check_ok).
  readinessMetrics(opts.registry, opts.readiness ?? [], () => opts.isShuttingDown?.() ?? false);
  const json = (res: ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { status: 'method_not_allowed' });
    if (path === '/metrics') {
      opts.registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(body),
        () => res.writeHead(500).end(),
      );
      return;
    }
    if (path === '/healthz') return json(res, 200, { status: 'ok', ...identity });
    if (path === '/readyz') {
      runReadiness(opts.readiness ?? [], opts.isShuttingDown?.() ?? false).then(
        (report) => json(res, readinessHttpStatus(report), { ...report, ...identity }),
        () => json(res, 503, { status: 'not_ready', ...identity }),
      );
      return;
    }
    json(res, 404, { status: 'not_found' });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  // Tells the local supervisor (when there is one) where to scrape and probe this process.
  process.send?.({ type: 'admin', port: bound });
  return {
    server,
    port: bound,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
