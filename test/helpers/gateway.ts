import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type pg from 'pg';
import { KeyStore, type Tier } from '../../src/auth/key-store.js';
import type { Config } from '../../src/config/index.js';
import { createGateway } from '../../src/gateway/app.js';
import { createPgPool } from '../../src/lib/postgres.js';
import { openGateway } from '../../src/gateway/wiring.js';
import { openDispatcher } from '../../src/queue/wiring.js';
import type { SkillBackend } from '../../src/skills/backend.js';
import { startTestSkill } from './skill.js';

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
 * also opens those skills and a dispatcher as their roles do (`openSkill`, `openDispatcher`).
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
    // Skills and the dispatcher opened as their roles open them (src/skills/wiring.ts,
    // src/queue/wiring.ts): requests take the whole queue path.
    for (const { name, backend } of opts.skills ?? []) {
      const skill = await startTestSkill({ name, backend, announceIn: config });
      closers.push(() => skill.stop());
    }
    if (opts.skills?.length) {
      const { closing } = await openDispatcher(config, { logger, metrics: new Registry() });
      closers.push(async () => {
        for (const step of closing) await Promise.resolve(step.run()).catch(() => undefined);
      });
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
