import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type pg from 'pg';
import { KeyStore, type Tier } from '../../src/auth/key-store.js';
import type { Config } from '../../src/config/index.js';
import { createGateway } from '../../src/gateway/app.js';
import { createPgPool } from '../../src/lib/postgres.js';
import { closeRedis, createRedis, redisReady } from '../../src/lib/redis.js';
import { openGateway } from '../../src/gateway/wiring.js';
import { createDispatcher, type Dispatcher } from '../../src/queue/dispatcher.js';
import type { SkillBackend } from '../../src/skills/backend.js';
import { SkillClientPool } from '../../src/skills/client-pool.js';
import { CachedRegistry, SkillRegistry } from '../../src/skills/registry.js';
import { createSkillServer, type SkillServer } from '../../src/skills/server.js';

export interface TestGateway {
  /** `http://127.0.0.1:<port>` of the gateway's own listener (no nginx). */
  url: string;
  pool: pg.Pool;
  keys: KeyStore;
  /** A new API key for `tenant` (created if new), as an Authorization header. */
  authFor(tenant: string, tier?: Tier): Promise<Record<string, string>>;
  close(): Promise<void>;
}

/**
 * One gateway in process, wired as `src/gateway/main.ts` wires it (real Postgres, Redis, key
 * store, authenticator, job producer, entity store), listening on a free port. With `skills`,
 * also serves those backends over real gRPC, announces them and runs a dispatcher, so requests
 * take the whole queue path.
 */
export async function startTestGateway(
  config: Config,
  opts: { skills?: { name: string; backend: SkillBackend }[] } = {},
): Promise<TestGateway> {
  const logger = pino({ level: 'silent' });
  const closers: (() => Promise<unknown> | unknown)[] = [];
  const close = async () => {
    for (const fn of closers.reverse()) await Promise.resolve(fn()).catch(() => undefined);
  };
  try {
    const pool = createPgPool(config.DATABASE_URL, { name: 'test-gateway', schema: config.DATABASE_SCHEMA });
    closers.push(() => pool.end());
    const redis = createRedis(config.REDIS_URL, { name: 'test-gateway-skills' });
    await redisReady(redis, config.REDIS_URL);
    closers.push(() => closeRedis(redis));
    const registry = new SkillRegistry(redis, config.KEY_PREFIX);
    const skills = new CachedRegistry(registry, config.REGISTRY_CACHE_MS);

    for (const { name, backend } of opts.skills ?? []) {
      const server: SkillServer = createSkillServer({ name, backend, logger, registry: new Registry() });
      const port = await server.start('127.0.0.1', 0);
      closers.push(() => server.stop(1_000));
      const replica = {
        name,
        ...backend.describe(),
        address: `127.0.0.1:${port}`,
        instance: `test:${name}`,
        startedAt: Date.now(),
      };
      // Announced once for far longer than any test runs: no heartbeat timer to clean up.
      await registry.announce(replica, 10 * 60_000);
      closers.push(() => registry.withdraw(name, replica.address));
    }
    if (opts.skills?.length) {
      const workerConnection = createRedis(config.REDIS_URL, { name: 'test-dispatcher', blocking: true });
      closers.push(() => closeRedis(workerConnection));
      const clients = new SkillClientPool(skills);
      closers.push(() => clients.close());
      const dispatcher: Dispatcher = createDispatcher({
        config,
        redis,
        workerConnection,
        registry: skills,
        pool: clients,
        logger,
        metrics: new Registry(),
      });
      await dispatcher.start();
      closers.push(() => dispatcher.close());
    }

    // The gateway itself, opened exactly as the gateway role opens it.
    const gateway = await openGateway(config, { instance: 'test-gateway', logger, metrics: new Registry() });
    closers.push(async () => {
      for (const step of gateway.closing) await Promise.resolve(step.run()).catch(() => undefined);
    });
    const keys = new KeyStore(pool);
    const { handler } = createGateway(gateway.deps);
    const server: Server = await new Promise((resolve, reject) => {
      const s = createServer(handler).listen(0, '127.0.0.1');
      s.once('listening', () => resolve(s));
      s.once('error', reject);
    });
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      pool,
      keys,
      async authFor(tenant, tier = 'standard') {
        const { key } = await keys.create({ tenant, tier });
        return { authorization: `Bearer ${key}` };
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
