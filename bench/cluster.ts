import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Config, loadConfig } from '../src/config/index.js';
import type { ManagedProcess } from '../src/cluster/managed-process.js';
import { startCluster } from '../src/cluster/supervisor.js';
import type { Stack } from './ceilings.js';
import { deleteKeys, dropSchema, freePorts } from '../test/helpers/env.js';
import { HOST } from './lib/processes.js';

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
  /** Each Node process's name and internal admin port (metrics), once reported. */
  adminPorts(): [string, number][];
  /** The supervised processes (for benchmarks that kill or restart one). */
  processes: ManagedProcess[];
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
  // nginx, then the two gateways (GATEWAY_BASE_PORT + i), below the kernel's ephemeral range.
  const [publicPort, gatewayBase] = (await freePorts(3)) as [number, number, number];
  const [statusPort] = (await freePorts(1)) as [number];
  const runDir = mkdtempSync(join(tmpdir(), 'skillserve-bench-'));
  const id = randomUUID();
  const overrides = {
    HOST,
    PUBLIC_PORT: String(publicPort),
    GATEWAY_BASE_PORT: String(gatewayBase),
    NGINX_STATUS_PORT: String(statusPort),
    // What is measured is the cluster; bench/scrape.ts measures what Prometheus costs it.
    PROMETHEUS: 'off',
    // Two gateways, as the ceilings have two upstreams: the comparison is like for like.
    GATEWAY_COUNT: '2',
    SKILLS: 'nlp',
    KEY_PREFIX: `bench-${id}`,
    // Own Postgres schema too: the API key the cluster creates for itself goes with it.
    DATABASE_SCHEMA: `bench_${id.replaceAll('-', '')}`,
    RUN_DIR: runDir,
    LOG_LEVEL: 'warn',
    // Benchmarks measure speed on whatever Redis the machine runs; persistence is not theirs to demand.
    REDIS_PERSISTENCE: 'warn',
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
    processes: cluster.processes,
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
    adminPorts() {
      return cluster.processes.flatMap((p): [string, number][] => (p.adminPort ? [[p.spec.name, p.adminPort]] : []));
    },
  };
}

/**
 * Removes what this run left in Redis and Postgres: thousands of retained jobs, cache entries,
 * and the schema holding the cluster's API key. Each step runs even if the other failed.
 */
async function cleanUp(config: Config, schema: string): Promise<void> {
  const [keys, db] = await Promise.allSettled([deleteKeys(config.KEY_PREFIX), dropSchema(schema)]);
  const problems = [
    ...(keys.status === 'rejected' ? [`Redis keys ${config.KEY_PREFIX}:* (${(keys.reason as Error).message})`] : []),
    ...(db.status === 'rejected' ? [`Postgres schema ${schema} (${(db.reason as Error).message})`] : []),
  ];
  if (problems.length > 0) throw new Error(`could not remove: ${problems.join('; ')}`);
}
