import { type Config, instanceId } from '../config/index.js';
import { handleShutdown } from '../lib/lifecycle.js';
import { closeRedis, createRedis, redisReady } from '../lib/redis.js';
import { buildVersion } from '../lib/version.js';
import { createLogger } from '../observability/logger.js';
import { serveAdmin } from '../observability/admin-server.js';
import { createRegistry } from '../observability/metrics.js';
import { advertisedHost, hostPort } from './advertise.js';
import { createBackend } from './backends/index.js';
import { SkillRegistry } from './registry.js';
import { createSkillServer } from './server.js';

/** Role `skill`: hosts SKILL_NAME over gRPC and announces it in the registry until stopped. */
export async function runSkill(config: Config): Promise<void> {
  const name = config.SKILL_NAME;
  const provisional = instanceId(config, `skill-${name}`);
  const logger = createLogger({ level: config.LOG_LEVEL, role: 'skill', instance: provisional });
  const backend = createBackend(name, config, logger);
  const metrics = createRegistry({ role: 'skill' });
  const server = createSkillServer({
    name,
    backend,
    logger,
    registry: metrics,
    lifecycle: {
      idleUnloadMs: config.MODEL_IDLE_UNLOAD_MS,
      minFreeMemoryMb: config.MIN_FREE_MEMORY_MB,
      healthIntervalMs: config.SKILL_HEALTH_INTERVAL_MS,
      refreshIntervalMs: config.MODEL_POLL_MS,
    },
  });

  const port = await server.start(config.HOST, config.SKILL_PORT);
  // Tells the local supervisor (when there is one) where its health monitor checks gRPC health.
  process.send?.({ type: 'grpc', port });
  // What the registry tells dispatchers and gateways to dial: not a wildcard bind address.
  const address = hostPort(advertisedHost(config), port);
  const instance = instanceId(config, `skill-${name}`, port);
  /** When the registry last took this replica's announcement: it gets traffic only while that is current. */
  let announcedAt = 0;
  const admin = await serveAdmin(
    {
      role: 'skill',
      instance,
      registry: metrics,
      readiness: [
        { name: 'model', check: () => server.checkServing() },
        {
          name: 'registry',
          async check() {
            if (Date.now() - announcedAt > config.SKILL_TTL_MS) throw new Error('not announced in the registry');
          },
        },
      ],
    },
    config.HOST,
    config.METRICS_PORT,
  );

  const redis = createRedis(config.REDIS_URL, {
    name: `skill-${name}`,
    commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
  });
  await redisReady(redis, config.REDIS_URL);
  const registry = new SkillRegistry(redis, config.KEY_PREFIX);
  const startedAt = Date.now();
  const capacity = { maxConcurrent: config.SKILL_MAX_CONCURRENCY, maxBatch: config.SKILL_MAX_BATCH };
  // Rebuilt on every heartbeat, so the registry follows the model's state (loaded, unloaded, …).
  const replica = () => ({
    name,
    ...backend.describe(),
    address,
    instance,
    startedAt,
    version: buildVersion(),
    state: backend.state(),
    capacity,
  });
  // A failed heartbeat is tried again shortly rather than a whole interval later, so after Redis
  // hung (no reconnect to announce on) the skill is back as soon as Redis answers.
  let retry: NodeJS.Timeout | undefined;
  const announce = (): Promise<void> =>
    registry.announce(replica(), config.SKILL_TTL_MS).then(
      () => {
        announcedAt = Date.now();
      },
      (err: unknown) => {
        if (announcedAt > 0 && Date.now() - announcedAt <= config.SKILL_HEARTBEAT_MS * 2)
          logger.warn({ err }, 'heartbeat to the registry failed');
        retry ??= setTimeout(
          () => {
            retry = undefined;
            void announce();
          },
          Math.min(200, config.SKILL_HEARTBEAT_MS),
        );
      },
    );
  await registry.announce(replica(), config.SKILL_TTL_MS);
  announcedAt = Date.now();
  const heartbeat = setInterval(announce, config.SKILL_HEARTBEAT_MS);
  // Redis came back (a restart, a failover, a network blip): announce at once, not on the next
  // heartbeat, so the skill does not look absent to the dispatchers and gateways meanwhile.
  redis.on('ready', () => void announce());
  // SIGHUP: re-read the model source now (e.g. after copying a new version into the repository).
  process.on('SIGHUP', () => {
    server.refresh().then(announce, (err: unknown) => logger.warn({ err }, 'refreshing the models failed'));
  });

  logger.info({ address, adminPort: admin.port, model: backend.describe().model }, 'skill serving');

  handleShutdown(logger, config.SHUTDOWN_TIMEOUT_MS, [
    {
      name: 'heartbeat',
      run: () => {
        clearInterval(heartbeat);
        clearTimeout(retry);
      },
    },
    { name: 'registry', run: () => registry.withdraw(name, address) },
    { name: 'grpc', run: () => server.stop(config.SHUTDOWN_TIMEOUT_MS / 2) },
    { name: 'admin', run: () => admin.close() },
    { name: 'redis', run: () => closeRedis(redis) },
  ]);
}
