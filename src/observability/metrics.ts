import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Registry } from 'prom-client';

/** A Prometheus registry with the default process metrics, every series labelled with role and instance. */
export function createRegistry(opts: { role: string; instance: string }): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ role: opts.role, instance: opts.instance });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** A bare `/metrics` listener for roles that have no HTTP API of their own (dispatcher, skill). */
export async function serveMetrics(
  registry: Registry,
  host: string,
  port: number,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
