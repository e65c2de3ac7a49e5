import { type Config, instanceId } from '../config/index.js';
import { handleShutdown } from '../lib/lifecycle.js';
import { createLogger } from '../observability/logger.js';
import { serveAdmin } from '../observability/admin-server.js';
import { createRegistry } from '../observability/metrics.js';
import { openSkill } from './wiring.js';

/** Role `skill`: hosts SKILL_NAME over gRPC and announces it in the registry until stopped. */
export async function runSkill(config: Config): Promise<void> {
  const provisional = instanceId(config, `skill-${config.SKILL_NAME}`);
  const logger = createLogger({ level: config.LOG_LEVEL, role: 'skill', instance: provisional });
  const metrics = createRegistry({ role: 'skill' });
  const skill = await openSkill(config, { logger, metrics });
  // Tells the local supervisor (when there is one) where its health monitor checks gRPC health.
  process.send?.({ type: 'grpc', port: skill.port });
  // The admin port answers before Redis does: /readyz then says the replica is not announced yet.
  const admin = await serveAdmin(
    {
      role: 'skill',
      instance: skill.instance,
      registry: metrics,
      readiness: [
        { name: 'model', check: () => skill.server.checkServing() },
        {
          name: 'registry',
          async check() {
            if (!skill.isAnnounced()) throw new Error('not announced in the registry');
          },
        },
      ],
    },
    config.HOST,
    config.METRICS_PORT,
  );
  await skill.announce();
  // SIGHUP: re-read the model source now (e.g. after copying a new version into the repository).
  process.on('SIGHUP', () => {
    skill.refresh().catch((err: unknown) => logger.warn({ err }, 'refreshing the models failed'));
  });

  logger.info(
    { address: skill.address, adminPort: admin.port, model: skill.backend.describe().model },
    'skill serving',
  );

  handleShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, [...skill.closing, { name: 'admin', run: () => admin.close() }]);
}
