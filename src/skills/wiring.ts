import type { Registry } from 'prom-client';
import { type Config, instanceId } from '../config/index.js';
import type { ShutdownStep } from '../lib/lifecycle.js';
import { closeRedis, describeRedis, openRedis, type RedisClient, redisReady } from '../lib/redis.js';
import { buildVersion } from '../lib/version.js';
import type { Logger } from '../observability/logger.js';
import { advertisedHost, hostPort } from './advertise.js';
import type { SkillBackend } from './backend.js';
import { createBackend } from './backends/index.js';
import { SkillRegistry } from './registry.js';
import { createSkillServer, type SkillServer } from './server.js';

export interface OpenSkill {
  name: string;
  backend: SkillBackend;
  server: SkillServer;
  /** The bound gRPC port, and the address the registry tells dispatchers and gateways to dial. */
  port: number;
  address: string;
  instance: string;
  /** Connects to Redis, announces the replica and keeps announcing it until closed. */
  announce(): Promise<void>;
  /** The registry took the replica's announcement within its TTL: it gets traffic. */
  isAnnounced(): boolean;
  /** Re-reads the model source now (SIGHUP), then announces the new state. */
  refresh(): Promise<void>;
  /** Closing steps, in order. */
  closing: ShutdownStep[];
}

/**
 * Opens a skill replica: its backend (`SKILL_NAME`, unless one is given), the gRPC server on
 * `HOST:SKILL_PORT`, and — once `announce` is called — its heartbeat in the registry. The role's
 * main and the tests open skills with this one function, as `openGateway` does for gateways.
 */
export async function openSkill(
  config: Config,
  { logger, metrics, backend: given }: { logger: Logger; metrics: Registry; backend?: SkillBackend },
): Promise<OpenSkill> {
  const name = config.SKILL_NAME;
  const backend = given ?? createBackend(name, config, logger);
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
  // What the registry tells dispatchers and gateways to dial: not a wildcard bind address.
  const address = hostPort(advertisedHost(config), port);
  const instance = instanceId(config, `skill-${name}`, port);

  let redis: RedisClient | undefined;
  let registry: SkillRegistry | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let retry: NodeJS.Timeout | undefined;
  /** When the registry last took this replica's announcement: it gets traffic only while that is current. */
  let announcedAt = 0;
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
  const beat = (): Promise<void> =>
    registry!.announce(replica(), config.SKILL_TTL_MS).then(
      () => {
        announcedAt = Date.now();
      },
      (err: unknown) => {
        if (announcedAt > 0 && Date.now() - announcedAt <= config.SKILL_HEARTBEAT_MS * 2)
          logger.warn({ err }, 'heartbeat to the registry failed');
        retry ??= setTimeout(
          () => {
            retry = undefined;
            void beat();
          },
          Math.min(200, config.SKILL_HEARTBEAT_MS),
        );
      },
    );

  return {
    name,
    backend,
    server,
    port,
    address,
    instance,
    async announce() {
      redis = openRedis(config, {
        name: `skill-${name}`,
        commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
      });
      await redisReady(redis, describeRedis(config));
      registry = new SkillRegistry(redis, config.KEY_PREFIX);
      await registry.announce(replica(), config.SKILL_TTL_MS);
      announcedAt = Date.now();
      heartbeat = setInterval(beat, config.SKILL_HEARTBEAT_MS);
      // Redis came back (a restart, a failover, a network blip): announce at once, not on the next
      // heartbeat, so the skill does not look absent to the dispatchers and gateways meanwhile.
      redis.on('ready', () => void beat());
    },
    isAnnounced: () => announcedAt > 0 && Date.now() - announcedAt <= config.SKILL_TTL_MS,
    async refresh() {
      await server.refresh();
      if (registry) await beat();
    },
    closing: [
      {
        name: 'heartbeat',
        run: () => {
          clearInterval(heartbeat);
          clearTimeout(retry);
        },
      },
      { name: 'registry', run: () => registry?.withdraw(name, address) },
      // Callers keep a registry snapshot for REGISTRY_CACHE_MS: keep serving that long, so the calls
      // they still send here are answered rather than refused (a scale-down drops no request).
      {
        name: 'drain',
        run: () =>
          registry &&
          new Promise((r) => setTimeout(r, Math.min(config.REGISTRY_CACHE_MS + 100, config.SHUTDOWN_TIMEOUT_MS / 4))),
      },
      { name: 'grpc', run: () => server.stop(config.SHUTDOWN_TIMEOUT_MS / 2) },
      { name: 'redis', run: () => redis && closeRedis(redis) },
    ],
  };
}
