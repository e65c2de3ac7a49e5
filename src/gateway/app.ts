import type { RequestListener } from 'node:http';
import express from 'express';
import { publicName } from '../lib/public-name.js';
import type { GatewayDeps } from './deps.js';
import { fastInfer } from './fast-path.js';
import { createInference } from './inference.js';
import { createGatewayMetrics } from './metrics.js';
import { authenticate } from './middleware/authenticate.js';
import { errorHandler, notFound } from './middleware/error-handler.js';
import { requestContext, requestLogger } from './middleware/request-context.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import { memoryRoutes } from './routes/memory.js';
import { openAiRoutes } from './routes/openai.js';
import { createInferService } from './routes/infer.js';
import { skillRoutes } from './routes/skills.js';

/**
 * The gateway's HTTP handling, from its dependencies (nothing listens or starts here; see
 * main.ts): `handler` is the server's request listener — the fast path for plain JSON infer
 * requests, Express for everything else; `refreshDue` recomputes the cache entries the
 * refresh-ahead predictor says are due, and main.ts calls it on a timer.
 */
export function createGateway(deps: GatewayDeps): {
  handler: RequestListener;
  refreshDue: (now?: number) => Promise<number>;
} {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', 'loopback');
  const metrics = createGatewayMetrics(deps.metrics, {
    pendingJobs: () => deps.jobs.pending(),
    cache: () => deps.cache.stats(),
    redisBreaker: () => deps.redis.breakerState(),
    pgPool: deps.pgPool,
  });
  const inference = createInference(deps, metrics);
  const serveInfer = createInferService(deps, inference, metrics.requestPhase);
  const context = { servedBy: deps.config.SERVED_BY_HEADER ? publicName(deps.instance, 'gw') : undefined, metrics };
  requestLogger(app, deps.logger);
  app.use(requestContext(context));
  // OpenAI-compatible routes authenticate themselves, to answer even a bad key in OpenAI's shape.
  app.use(openAiRoutes(deps, inference));
  // Everything under /v1 is the API: it needs a key. Health and metrics below do not.
  app.use('/v1', authenticate(deps));
  app.use(skillRoutes(deps, serveInfer));
  app.use(jobRoutes(deps, inference));
  app.use(memoryRoutes(deps));
  app.use(healthRoutes(deps));
  app.use(notFound());
  app.use(errorHandler());
  const fast = fastInfer(deps, serveInfer, context);
  const handler: RequestListener = (req, res) => {
    if (!fast(req, res)) app(req, res);
  };
  return { handler, refreshDue: inference.refreshDue };
}
