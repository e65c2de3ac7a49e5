import { type Config, instanceId } from '../config/index.js';
import { handleShutdown } from '../lib/lifecycle.js';
import { createLogger } from '../observability/logger.js';
import { serveAdmin } from '../observability/admin-server.js';
import { createRegistry } from '../observability/metrics.js';
import { SkillRegistry } from '../skills/registry.js';
import { registerQueueMetrics } from './queue-metrics.js';
import { openDispatcher } from './wiring.js';

/** Role `dispatcher`: BullMQ workers that feed the skills. */
export async function runDispatcher(config: Config): Promise<void> {
  const instance = instanceId(config, 'dispatcher');
  const logger = createLogger({ level: config.LOG_LEVEL, role: 'dispatcher', instance });
  const metrics = createRegistry({ role: 'dispatcher' });
  const { dispatcher, redis, registry, closing } = await openDispatcher(config, { logger, metrics });
  const queueMetrics = registerQueueMetrics({ redis, registry, keyPrefix: config.KEY_PREFIX, metrics });
  let stopping = false;
  const admin = await serveAdmin(
    {
      role: 'dispatcher',
      instance,
      registry: metrics,
      readiness: [
        { name: 'redis', check: async () => void (await redis.ping()) },
        {
          name: 'workers',
          // Consuming: a running worker for every skill in the catalogue, as Redis has it now.
          async check() {
            const { catalogue } = await new SkillRegistry(redis, config.KEY_PREFIX).snapshot();
            if (catalogue.size === 0) throw new Error('no skill in the catalogue yet');
            const running = new Set(dispatcher.consuming());
            const missing = [...catalogue.keys()].filter((name) => !running.has(name));
            if (missing.length > 0) throw new Error(`no worker yet for ${missing.join(', ')}`);
          },
        },
      ],
      isShuttingDown: () => stopping,
    },
    config.HOST,
    config.METRICS_PORT,
  );
  logger.info({ adminPort: admin.port }, 'dispatcher running');

  const [workers, ...rest] = closing;
  handleShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, [
    {
      name: 'workers',
      run: () => {
        stopping = true;
        return workers!.run();
      },
    },
    { name: 'queue-metrics', run: () => queueMetrics.close() },
    ...rest,
    { name: 'admin', run: () => admin.close() },
  ]);
}
