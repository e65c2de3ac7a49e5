import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Config, instanceId } from '../config/index.js';
import { handleShutdown } from '../lib/lifecycle.js';
import { publicName } from '../lib/public-name.js';
import { createLogger } from '../observability/logger.js';
import { serveAdmin } from '../observability/admin-server.js';
import { createRegistry } from '../observability/metrics.js';
import { createGateway } from './app.js';
import { openGateway } from './wiring.js';

/** Role `gateway`: opens its dependencies, listens, and closes everything on SIGTERM. */
export async function runGateway(config: Config): Promise<void> {
  const instance = instanceId(config, 'gateway', config.GATEWAY_PORT);
  const logger = createLogger({ level: config.LOG_LEVEL, role: 'gateway', instance });
  const metrics = createRegistry({ role: 'gateway' });
  const gateway = await openGateway(config, { instance, logger, metrics });
  const { handler, refreshDue } = createGateway(gateway.deps);

  const refreshTimer = setInterval(() => {
    refreshDue().catch((err: unknown) => logger.warn({ err }, 'refresh-ahead tick failed'));
  }, 1_000);
  const server = createServer(handler).listen(config.GATEWAY_PORT, config.HOST);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  // Longer than nginx's upstream keepalive_timeout, so nginx never reuses a socket we just closed.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  const admin = await serveAdmin(
    {
      role: 'gateway',
      instance,
      registry: metrics,
      readiness: gateway.deps.readiness,
      isShuttingDown: gateway.deps.isShuttingDown,
    },
    config.HOST,
    config.METRICS_PORT,
  );
  logger.info(
    { port: (server.address() as AddressInfo).port, adminPort: admin.port, servedBy: publicName(instance, 'gw') },
    'gateway listening',
  );

  handleShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, [
    {
      name: 'http',
      run: () =>
        new Promise<void>((resolve) => {
          gateway.drain();
          // Stop accepting, let in-flight requests finish, then cut what is left.
          const timer = setTimeout(() => server.closeAllConnections(), config.SHUTDOWN_TIMEOUT_MS / 2);
          server.close(() => {
            clearTimeout(timer);
            resolve();
          });
          server.closeIdleConnections();
        }),
    },
    { name: 'refresh-ahead', run: () => clearInterval(refreshTimer) },
    { name: 'admin', run: () => admin.close() },
    ...gateway.closing,
  ]);
}
