import express, { type Express } from 'express';
import type { GatewayDeps } from './deps.js';
import { createGatewayMetrics } from './metrics.js';
import { authenticate } from './middleware/authenticate.js';
import { errorHandler, notFound } from './middleware/error-handler.js';
import { requestContext } from './middleware/request-context.js';
import { healthRoutes } from './routes/health.js';
import { memoryRoutes } from './routes/memory.js';
import { skillRoutes } from './routes/skills.js';

/** Builds the gateway's HTTP app from its dependencies; it does not listen (see main.ts). */
export function createApp(deps: GatewayDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', 'loopback');
  const metrics = createGatewayMetrics(deps.metrics, () => deps.jobs.pending());
  app.use(requestContext({ instance: deps.instance, logger: deps.logger, metrics }));
  app.use(healthRoutes(deps));
  // Everything under /v1 is the API: it needs a key. Health and metrics above do not.
  app.use('/v1', authenticate(deps));
  app.use(skillRoutes(deps));
  app.use(memoryRoutes(deps));
  app.use(notFound());
  app.use(errorHandler());
  return app;
}
