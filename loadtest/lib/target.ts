import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { createPgPool } from '../../src/lib/postgres.js';
import { startBenchCluster } from '../../bench/cluster.js';
import { type ClusterState, isAlive, readState } from '../../src/cluster/state.js';
import { type Config, loadConfig } from '../../src/config/index.js';

/** The cluster a load test runs against. */
export interface Target {
  endpoint: string;
  /** The configuration of the cluster (its database schema and key prefix hold the run's keys). */
  config: Config;
  /** True when this run started the cluster itself (and stops it at the end). */
  own: boolean;
  /** Process ids of the cluster's roles and nginx (nginx workers count as descendants); empty when unknown. */
  clusterPids(): number[];
  /** Process ids of what `up` runs to watch the cluster (Prometheus, Alertmanager, exporters). */
  monitoringPids(): number[];
  /** The cluster's Prometheus: LOADTEST_PROMETHEUS_URL, else the one `up` runs (recorded in cluster.json). */
  prometheusUrl?: string;
  /** Admin URLs of the gateways (their /metrics); empty when unknown. */
  gatewayAdminUrls(): string[];
  /** The Redis server's pid, when Redis is on this machine; its CPU is reported apart. */
  redisPid?: number;
  /** The Postgres postmaster's pid (its backends are its children), when Postgres is on this machine. */
  postgresPid?: number;
  stop(): Promise<void>;
}

const print = (line: string) => process.stdout.write(`${line}\n`);

/**
 * The running cluster: LOADTEST_HOST when given, else the one `skillserve up` recorded in RUN_DIR.
 * With neither, and `startIfNone`, starts a cluster of its own (own key prefix, schema and free
 * ports, the configuration's limits) and stops it at the end, so the run is self-contained.
 */
export async function openTarget(opts: { startIfNone: boolean; env?: NodeJS.ProcessEnv }): Promise<Target> {
  const env = opts.env ?? process.env;
  const config = loadConfig(env);
  const state = readState(config.RUN_DIR);
  const running = state && isAlive(state.supervisorPid) ? state : undefined;
  const host = env.LOADTEST_HOST?.replace(/\/$/, '');
  if (host || running) {
    const known = running && (!host || running.endpoint === host) ? config.RUN_DIR : undefined;
    return describe(host ?? running!.endpoint, config, known, false, async () => undefined);
  }
  if (!opts.startIfNone) {
    throw new Error(
      `no running cluster: nothing in ${config.RUN_DIR}/cluster.json and LOADTEST_HOST is not set (start one with npm run up)`,
    );
  }
  print('loadtest: no cluster is running; starting one of its own (2 gateways, nlp and onnx) on free ports…');
  const limits = Object.entries(config.RATE_LIMITS)
    .map(([tier, n]) => `${tier}=${n}`)
    .join(',');
  const cluster = await startBenchCluster((line) => print(`  cluster: ${line}`), {
    SKILLS: 'nlp,onnx',
    // The bench cluster lifts limits out of reach; a load test runs against the real ones.
    RATE_LIMITS: limits,
    NGINX_RATE_PER_IP: String(config.NGINX_RATE_PER_IP),
    NGINX_BURST_PER_IP: String(config.NGINX_BURST_PER_IP),
  });
  const stopOnExit = () => cluster.killSync();
  process.once('exit', stopOnExit);
  return describe(cluster.endpoint, cluster.config, cluster.config.RUN_DIR, true, async () => {
    process.off('exit', stopOnExit);
    await cluster.stop();
  });
}

async function describe(
  endpoint: string,
  config: Config,
  runDir: string | undefined,
  own: boolean,
  stop: () => Promise<void>,
): Promise<Target> {
  const stateNow = (): ClusterState | undefined => (runDir ? readState(runDir) : undefined);
  if (runDir) await waitForAdminPorts(runDir);
  return {
    endpoint,
    config,
    own,
    clusterPids: () => pidsOf(stateNow(), true),
    monitoringPids: () => pidsOf(stateNow(), false),
    prometheusUrl: process.env.LOADTEST_PROMETHEUS_URL || stateNow()?.prometheusUrl,
    gatewayAdminUrls: () =>
      (stateNow()?.processes ?? [])
        .filter((p) => p.name.startsWith('gateway') && p.adminPort)
        .map((p) => `http://${config.HOST}:${p.adminPort}`),
    redisPid: await localRedisPid(config.REDIS_URL),
    postgresPid: await localPostmasterPid(config),
    stop,
  };
}

/** The roles and nginx serve requests; the rest of what `up` runs (Prometheus, exporters) watches them. */
const servesRequests = (name: string) => name === 'nginx' || /^(gateway|dispatcher|skill)-/.test(name);

function pidsOf(state: ClusterState | undefined, serving: boolean): number[] {
  return (state?.processes ?? [])
    .filter((p) => servesRequests(p.name) === serving)
    .map((p) => p.pid)
    .filter((p): p is number => !!p);
}

/** The supervisor records admin ports a moment after each process reports it. */
async function waitForAdminPorts(runDir: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const gateways = (readState(runDir)?.processes ?? []).filter((p) => p.name.startsWith('gateway'));
    if (gateways.length > 0 && gateways.every((p) => p.adminPort)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  print("loadtest: the gateways' admin ports are not recorded; the server-side view is left out");
}

async function localRedisPid(url: string): Promise<number | undefined> {
  if (!isLocal(new URL(url).hostname)) return undefined;
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const pid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
    return Number.isInteger(pid) && isAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}

const isLocal = (host: string) => ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host);

/** The parent of our own backend is the postmaster. */
async function localPostmasterPid(config: Config): Promise<number | undefined> {
  if (!isLocal(new URL(config.DATABASE_URL).hostname)) return undefined;
  const pool = createPgPool(config.DATABASE_URL, {
    name: 'skillserve-loadtest',
    schema: config.DATABASE_SCHEMA,
    max: 1,
  });
  try {
    const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const stat = readFileSync(`/proc/${rows[0]!.pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) && ppid > 1 ? ppid : undefined;
  } catch {
    return undefined;
  } finally {
    await pool.end();
  }
}
