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
      readiness.map(async ({ name, check }) => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
        });
        try {
          await Promise.race([check(), timeout]);
          return [name, 'ok'] as const;
        } catch (err) {
          return [name, (err as Error).message || 'failed'] as const;
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    const checks = Object.fromEntries(results);
    const failing = results.filter(([, v]) => v !== 'ok').map(([k]) => k);
    if (isShuttingDown?.()) failing.push('shutting_down');
    res.status(failing.length === 0 ? 200 : 503).json({
      status: failing.length === 0 ? 'ready' : 'not_ready',
      ...(failing.length > 0 ? { failing } : {}),
      checks,
      instance,
    });
  });

  router.get('/metrics', async function metricsRoute(_req, res) {
    res.type(metrics.contentType).send(await metrics.metrics());
  });

  return router;
}
