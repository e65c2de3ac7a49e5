import express, { type Express } from 'express';
import type { GatewayDeps } from './deps.js';
import { createInference } from './inference.js';
import { createGatewayMetrics } from './metrics.js';
import { authenticate } from './middleware/authenticate.js';
import { errorHandler, notFound } from './middleware/error-handler.js';
import { requestContext, requestLogger } from './middleware/request-context.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import { memoryRoutes } from './routes/memory.js';
import { skillRoutes } from './routes/skills.js';

/** Builds the gateway's HTTP app from its dependencies; it does not listen (see main.ts). */
export function createApp(deps: GatewayDeps): Express {
  return createGateway(deps).app;
}

/**
 * The app and the gateway's background work: `refreshDue` recomputes cache entries the
 * refresh-ahead predictor says are due; main.ts calls it on a timer (nothing starts here).
 */
export function createGateway(deps: GatewayDeps): { app: Express; refreshDue: (now?: number) => Promise<number> } {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', 'loopback');
  const metrics = createGatewayMetrics(deps.metrics, {
    pendingJobs: () => deps.jobs.pending(),
    cache: () => deps.cache.stats(),
    redisUp: () => deps.redis.available(),
  });
  const inference = createInference(deps, metrics);
  requestLogger(app, deps.logger);
  app.use(requestContext({ instance: deps.instance, metrics }));
  // Everything under /v1 is the API: it needs a key. Health and metrics below do not. The
  // infer route comes first: it is the one the traffic is for, and Express tries routes in order.
  app.use('/v1', authenticate(deps));
  app.use(skillRoutes(deps, inference));
  app.use(jobRoutes(deps, inference));
  app.use(memoryRoutes(deps));
  app.use(healthRoutes(deps));
  app.use(notFound());
  app.use(errorHandler());
  return { app, refreshDue: inference.refreshDue };
}
