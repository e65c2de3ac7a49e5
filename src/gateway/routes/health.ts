import { Router } from 'express';
import { readinessHttpStatus, runReadiness } from '../../observability/readiness.js';
import type { GatewayDeps } from '../deps.js';

/**
 * The public `GET /healthz` (the process is alive) and `GET /readyz` (ready, degraded or not
 * ready). They say only that: which dependency fails and why, and which instance answered, are
 * on the internal admin port (src/observability/admin-server.ts), never behind nginx.
 */
export function healthRoutes({ readiness, isShuttingDown }: Pick<GatewayDeps, 'readiness' | 'isShuttingDown'>): Router {
  const router = Router();

  router.get('/healthz', function healthz(_req, res) {
    res.json({ status: 'ok' });
  });

  router.get('/readyz', async function readyz(_req, res) {
    const { status } = await runReadiness(readiness, isShuttingDown?.() ?? false);
    res.status(readinessHttpStatus({ status })).json({ status });
  });

  return router;
}
