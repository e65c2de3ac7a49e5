import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { Config } from '../../src/config/index.js';
import type { SkillBackend } from '../../src/skills/backend.js';
import { createNlpBackend } from '../../src/skills/backends/nlp/index.js';
import { SkillClient } from '../../src/skills/client.js';
import { createSkillServer, type LifecycleSettings, type SkillServer } from '../../src/skills/server.js';
import { openSkill } from '../../src/skills/wiring.js';

export interface TestSkill {
  name: string;
  backend: SkillBackend;
  server: SkillServer;
  port: number;
  /** `127.0.0.1:<port>`. */
  address: string;
  /** A client of this replica, closed by `stop`. */
  client(channels?: number): SkillClient;
  stop(graceMs?: number): Promise<void>;
}

/**
 * A skill replica in this process on 127.0.0.1 and a free port: the nlp backend unless another is
 * given. With `announceIn`, opened as the skill role opens it (src/skills/wiring.ts) and announced
 * in that config's registry with its heartbeat; without, a bare gRPC server nobody discovers.
 */
export async function startTestSkill(
  opts: {
    name?: string;
    backend?: SkillBackend;
    lifecycle?: Partial<LifecycleSettings>;
    announceIn?: Config;
  } = {},
): Promise<TestSkill> {
  const name = opts.name ?? 'nlp';
  const backend = opts.backend ?? createNlpBackend();
  const logger = pino({ level: 'silent' });
  const clients: SkillClient[] = [];
  let server: SkillServer;
  let port: number;
  let close: (graceMs: number) => Promise<void>;
  if (opts.announceIn) {
    const config: Config = { ...opts.announceIn, SKILL_NAME: name, HOST: '127.0.0.1', SKILL_PORT: 0 };
    const skill = await openSkill(config, { logger, metrics: new Registry(), backend });
    await skill.announce();
    ({ server, port } = skill);
    close = async () => {
      for (const step of skill.closing) await Promise.resolve(step.run()).catch(() => undefined);
    };
  } else {
    server = createSkillServer({ name, backend, logger, registry: new Registry(), lifecycle: opts.lifecycle });
    port = await server.start('127.0.0.1', 0);
    close = (graceMs) => server.stop(graceMs);
  }
  const address = `127.0.0.1:${port}`;
  return {
    name,
    backend,
    server,
    port,
    address,
    client(channels) {
      const c = new SkillClient(name, address, { channels });
      clients.push(c);
      return c;
    },
    async stop(graceMs = 1_000) {
      for (const c of clients) c.close();
      await close(graceMs);
    },
  };
}
