import { Router } from 'express';
import type { GatewayDeps } from '../deps.js';

/** How long one readiness check may take before it counts as failed. */
const CHECK_TIMEOUT_MS = 1_500;

/** `GET /healthz` (the process is alive), `GET /readyz` (its dependencies answer), `GET /metrics`. */
export function healthRoutes({ readiness, metrics, instance, isShuttingDown }: GatewayDeps): Router {
  const router = Router();

  router.get('/healthz', function healthz(_req, res) {
    res.json({ status: 'ok', instance });
  });

  router.get('/readyz', async function readyz(_req, res) {
    const results = await Promise.all(
      readiness.map(async ({ name, check, degradesOnly }) => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
        });
        try {
          await Promise.race([check(), timeout]);
          return [name, 'ok', degradesOnly] as const;
        } catch (err) {
          return [name, (err as Error).message || 'failed', degradesOnly] as const;
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    const checks = Object.fromEntries(results.map(([k, v]) => [k, v]));
    const failing = results.filter(([, v, d]) => v !== 'ok' && !d).map(([k]) => k);
    const degraded = results.filter(([, v, d]) => v !== 'ok' && d).map(([k]) => k);
    if (isShuttingDown?.()) failing.push('shutting_down');
    const status = failing.length > 0 ? 'not_ready' : degraded.length > 0 ? 'degraded' : 'ready';
    // Degraded still takes traffic: taking every gateway out because Redis is down would turn a
    // degraded cluster into a dead one.
    res.status(failing.length === 0 ? 200 : 503).json({
      status,
      ...(failing.length > 0 ? { failing } : {}),
      ...(degraded.length > 0 ? { degraded } : {}),
      checks,
      instance,
    });
  });

  router.get('/metrics', async function metricsRoute(_req, res) {
    res.type(metrics.contentType).send(await metrics.metrics());
  });

  return router;
}
