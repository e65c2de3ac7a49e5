import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Config, loadConfig } from '../src/config/index.js';
import { startCluster } from '../src/cluster/supervisor.js';
import { createPgPool } from '../src/lib/postgres.js';
import { createRedis } from '../src/lib/redis.js';
import type { Stack } from './ceilings.js';
import { freePort, freePortPair, HOST } from './processes.js';

const cliPath = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
/** Per-key requests per window and per-IP requests/s that no run of this bench can reach. */
const NO_LIMIT = 1_000_000_000;
const NO_LIMIT_PER_S = 1_000_000;

export interface BenchCluster extends Stack {
  config: Config;
  /** Headers every infer request needs: the cluster's development API key. */
  headers: Record<string, string>;
  /** nginx's public origin, e.g. http://127.0.0.1:41234. */
  endpoint: string;
  /** Synchronous last resort on process exit: SIGKILL every process of the cluster. */
  killSync(): void;
}

/**
 * The real cluster, started in process on free ports with its own key prefix and run
 * directory, so it never collides with a dev cluster (or its queues) on the same machine.
 */
export async function startBenchCluster(
  print: (line: string) => void,
  /** Environment on top of the bench's own (e.g. SKILLS, BATCH_MAX_SIZE); it wins. */
  extraEnv: Record<string, string> = {},
): Promise<BenchCluster> {
  const gatewayBase = await freePortPair();
  let publicPort = await freePort();
  while (publicPort === gatewayBase || publicPort === gatewayBase + 1) publicPort = await freePort();
  const runDir = mkdtempSync(join(tmpdir(), 'skillserve-bench-'));
  const id = randomUUID();
  const overrides = {
    HOST,
    PUBLIC_PORT: String(publicPort),
    GATEWAY_BASE_PORT: String(gatewayBase),
    // Two gateways, as the ceilings have two upstreams: the comparison is like for like.
    GATEWAY_COUNT: '2',
    SKILLS: 'nlp',
    KEY_PREFIX: `bench-${id}`,
    // Own Postgres schema too: the API key the cluster creates for itself goes with it.
    DATABASE_SCHEMA: `bench_${id.replaceAll('-', '')}`,
    RUN_DIR: runDir,
    LOG_LEVEL: 'warn',
    // All load comes from one key and one IP: limits sized for many clients would turn most of
    // it into 429s. Raised out of reach, their checks still run on every request.
    RATE_LIMITS: `free=${NO_LIMIT},standard=${NO_LIMIT},premium=${NO_LIMIT}`,
    NGINX_RATE_PER_IP: String(NO_LIMIT_PER_S),
    NGINX_BURST_PER_IP: String(NO_LIMIT_PER_S),
    ...extraEnv,
  };
  // Each child loads its own config from the environment it is given: hand it the same one.
  const env = { ...process.env, ...overrides };
  const config = loadConfig(env);

  let cluster: Awaited<ReturnType<typeof startCluster>>;
  try {
    cluster = await startCluster({ config, env, cliPath, print });
  } catch (err) {
    await cleanUp(config, overrides.DATABASE_SCHEMA).catch(() => undefined);
    // The run directory stays: its logs/ say why the cluster did not start.
    throw new Error(`${(err as Error).message}\n  (run directory kept: ${runDir})`, { cause: err });
  }
  return {
    config,
    url: `${cluster.endpoint}/v1/skills/nlp/infer`,
    endpoint: cluster.endpoint,
    headers: { Authorization: `Bearer ${cluster.devKey.key}` },
    pids() {
      const out = { node: [] as number[], nginx: [] as number[] };
      for (const p of cluster.processes) if (p.pid) out[p.spec.name === 'nginx' ? 'nginx' : 'node'].push(p.pid);
      return out;
    },
    async stop() {
      try {
        await cluster.stop();
        await cleanUp(config, overrides.DATABASE_SCHEMA);
      } finally {
        rmSync(runDir, { recursive: true, force: true });
      }
    },
    killSync() {
      for (const p of cluster.processes) if (p.pid) process.kill(p.pid, 'SIGKILL');
    },
  };
}

/**
 * Removes what this run left in Redis and Postgres: thousands of retained jobs, cache entries,
 * and the schema holding the cluster's API key. Each step runs even if the other failed.
 */
async function cleanUp(config: Config, schema: string): Promise<void> {
  const problems: string[] = [];
  // Connect first and wait: command connections have no offline queue, a command sent before
  // the connection is ready fails at once.
  const redis = createRedis(config.REDIS_URL, { name: 'bench-cleanup', lazyConnect: true });
  try {
    await redis.connect();
    const stream = redis.scanStream({ match: `${config.KEY_PREFIX}:*`, count: 1_000 });
    for await (const keys of stream as AsyncIterable<string[]>) if (keys.length > 0) await redis.unlink(...keys);
  } catch (err) {
    problems.push(`Redis keys ${config.KEY_PREFIX}:* (${(err as Error).message})`);
  } finally {
    redis.disconnect();
  }
  const pg = createPgPool(config.DATABASE_URL, { name: 'skillserve-bench-cleanup', max: 1 });
  try {
    // The name is ours (bench_ + hex), not user input: safe to interpolate.
    await pg.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } catch (err) {
    problems.push(`Postgres schema ${schema} (${(err as Error).message})`);
  } finally {
    await pg.end();
  }
  if (problems.length > 0) throw new Error(`could not remove: ${problems.join('; ')}`);
}
