import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../config/index.js';
import { ensureDevKey } from './dev-key.js';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { serveControl } from './control.js';
import { HealthMonitor } from './health-monitor.js';
import { ManagedProcess, type ProcessSpec } from './managed-process.js';
import { planMonitoring } from './monitoring.js';
import { nginxParamsFromConfig } from './nginx.js';
import { gatewayPool, NginxUpstreams, type PoolContext, rolePool } from './pools.js';
import { Scaler } from './scaler.js';
import { handleControl } from './status.js';
import { waitReady } from './wait-ready.js';
import { checkPortFree, checkPostgres, checkRedis, findNginx, nginxVersion } from './preflight.js';
import { adminProbe, publicProbe, skillsProbe, waitAllReady } from './start-wait.js';
import { clearState, isAlive, writeState } from './state.js';
import { ensureSelfSignedCert } from './tls.js';

export interface SupervisorOptions {
  config: Config;
  /** The environment `config` was parsed from; children get it too, so they see the same settings. */
  env?: NodeJS.ProcessEnv;
  /** The CLI entry (src/cli.ts or dist/cli.js) that children run with a role. */
  cliPath: string;
  /** Where the supervisor reports; the CLI prints it, tests capture it. */
  print: (line: string) => void;
  /** How long to wait for the cluster to become ready. */
  readyTimeoutMs?: number;
}

export interface RunningCluster {
  /** Plain HTTP; with TLS on, on 127.0.0.1 only. */
  endpoint: string;
  /** Set when `up` runs Prometheus (PROMETHEUS=on) and Alertmanager (ALERTMANAGER=on). */
  prometheusUrl?: string;
  alertmanagerUrl?: string;
  /** With TLS on: the HTTPS endpoint and the certificate a client should trust (self-signed under `up`). */
  tls?: { endpoint: string; certFile: string; selfSigned: boolean };
  /** The development API key (tenant `dev`) and the file it is kept in. */
  devKey: { key: string; file: string; created: boolean };
  processes: ManagedProcess[];
  /** The autoscaler and `skillserve scale`'s executor. */
  scaler: Scaler;
  /** What the operator must know (e.g. a Redis without persistence, when REDIS_PERSISTENCE=warn). */
  warnings: string[];
  stop(): Promise<void>;
}

/**
 * The local supervisor: checks Redis and Postgres, starts skills, dispatchers, gateways and
 * nginx (its own instance, own prefix), then the exporters, Alertmanager and Prometheus (see
 * monitoring.ts), restarts what dies, and stops everything on request.
 */
export async function startCluster({
  config,
  env = process.env,
  cliPath,
  print,
  readyTimeoutMs = 90_000,
}: SupervisorOptions): Promise<RunningCluster> {
  const runDir = resolve(config.RUN_DIR);
  const nginxPrefix = join(runDir, 'nginx');
  const logDir = join(runDir, 'logs');
  for (const dir of [logDir, join(nginxPrefix, 'logs'), join(nginxPrefix, 'tmp')]) mkdirSync(dir, { recursive: true });
  await killStaleNginx(nginxPrefix);

  const host = config.HOST;
  const gatewayPorts = Array.from({ length: config.GATEWAY_COUNT }, (_, i) => config.GATEWAY_BASE_PORT + i);
  const [redisWarning] = await Promise.all([checkRedis(config), checkPostgres(config)]);
  const warnings = redisWarning ? [redisWarning] : [];
  for (const warning of warnings) print(loud(warning));
  const tlsOn = config.TLS === 'on';
  await checkPortFree(tlsOn ? '127.0.0.1' : host, config.PUBLIC_PORT, 'the public');
  if (tlsOn) await checkPortFree(host, config.TLS_PORT, 'the HTTPS');
  await checkPortFree(host, config.NGINX_STATUS_PORT, "nginx's status");
  for (const port of gatewayPorts) await checkPortFree(host, port, 'a gateway');
  if (config.PROMETHEUS === 'on') {
    for (const [what, port] of [
      ['Prometheus', config.PROMETHEUS_PORT],
      ['the nginx exporter', config.NGINX_EXPORTER_PORT],
      ['the Redis exporter', config.REDIS_EXPORTER_PORT],
      ['the Postgres exporter', config.POSTGRES_EXPORTER_PORT],
      ...(config.ALERTMANAGER === 'on' ? [['Alertmanager', config.ALERTMANAGER_PORT] as const] : []),
    ] as const)
      await checkPortFree(host, port, what);
  }
  const nginxBin = findNginx(config);
  const selfSigned = tlsOn && !config.TLS_CERT_FILE ? ensureSelfSignedCert(runDir, [host]) : undefined;
  // Also applies the migrations once, before N gateways race for the advisory lock.
  const devKey = await ensureDevKey(config, runDir);

  // Keep loader flags (e.g. tsx's --import) so children run the same code; drop test-runner flags.
  const nodeArgs = [...process.execArgv.filter((a) => !a.startsWith('--test')), cliPath];
  // Every role's admin port (metrics, health) is picked by the OS and reported back over IPC.
  const role = (name: string, roleName: string, roleEnv: Record<string, string>): ProcessSpec => ({
    name,
    command: process.execPath,
    args: [...nodeArgs, roleName],
    env: { ...env, METRICS_PORT: '0', ...roleEnv },
    logFile: join(logDir, `${name}.log`),
    ipc: true,
  });

  const nginxConf = join(nginxPrefix, 'nginx.conf');
  const nginxParams = nginxParamsFromConfig(
    // `up` balances over the gateways it starts itself.
    { ...config, NGINX_UPSTREAMS: [], NGINX_RESOLVER: undefined },
    { prefix: nginxPrefix, version: nginxVersion(nginxBin), ...(selfSigned ? { tlsFiles: selfSigned } : {}) },
  );
  const upstreams = new NginxUpstreams(nginxConf, nginxParams);
  upstreams.write(gatewayPorts);
  const nginxSpec: ProcessSpec = {
    name: 'nginx',
    command: nginxBin,
    args: ['-p', nginxPrefix, '-c', nginxConf, '-e', join(nginxPrefix, 'logs', 'error.log'), '-g', 'daemon off;'],
    env,
    logFile: join(logDir, 'nginx.log'),
    ipc: false,
    // SIGQUIT is nginx's graceful shutdown.
    stopSignal: 'SIGQUIT',
  };

  const monitoring = planMonitoring(config, runDir, env, logDir);
  const endpoint = `http://${nginxParams.listen.host}:${config.PUBLIC_PORT}`;
  const tls = nginxParams.tls && {
    endpoint: `https://${host}:${config.TLS_PORT}`,
    certFile: nginxParams.tls.certFile,
    selfSigned: Boolean(selfSigned),
  };
  const processes: ManagedProcess[] = [];
  let stopped = false;
  let supervisorPort: number | undefined;
  // A record scheduled by a late event must not recreate the state file (or fail on a run
  // directory removed since) once the cluster has stopped.
  const record = () => {
    if (stopped) return;
    writeState(runDir, {
      supervisorPid: process.pid,
      startedAt: new Date().toISOString(),
      endpoint,
      ...(monitoring.prometheusUrl ? { prometheusUrl: monitoring.prometheusUrl } : {}),
      ...(monitoring.alertmanagerUrl ? { alertmanagerUrl: monitoring.alertmanagerUrl } : {}),
      ...(supervisorPort ? { adminPort: supervisorPort } : {}),
      processes: processes.map((p) => ({ name: p.spec.name, pid: p.pid, adminPort: p.adminPort })),
    });
    // Prometheus follows the cluster: a target per process, on the admin port it last reported.
    monitoring.writeTargets(processes, supervisorPort);
  };
  const log = (line: string) => print(`[${new Date().toISOString()}] ${line}`);
  const onEvent = (name: string, event: string) => {
    log(`${name}: ${event}`);
    // A reported admin port is a new scrape target: at once. Other events settle for a second.
    if (event.startsWith('admin port')) record();
    else setTimeout(record, 1_000).unref();
  };

  const ctx: PoolContext = { config, spec: role, onEvent, processes, record, readyTimeoutMs, log };
  const skillPools = config.SKILLS.map((skill) => rolePool(ctx, { role: 'skill', skill }));
  const dispatchers = rolePool(ctx, { role: 'dispatcher' });
  const gateways = gatewayPool(ctx, upstreams);
  const scaler = new Scaler(
    [gateways, ...skillPools, dispatchers],
    {
      upCpuPercent: config.SCALE_UP_CPU_PERCENT,
      upWindowMs: config.SCALE_UP_WINDOW_MS,
      downCpuPercent: config.SCALE_DOWN_CPU_PERCENT,
      downWindowMs: config.SCALE_DOWN_WINDOW_MS,
      cooldownMs: config.SCALE_COOLDOWN_MS,
    },
    { enabled: config.AUTOSCALE === 'on', log, all: () => processes },
  );
  const health = new HealthMonitor({ host, stuckAfterMs: config.STUCK_AFTER_MS, log, all: () => processes });
  let ticker: NodeJS.Timeout | undefined;
  let control: { close(): Promise<void> } | undefined;
  let metricsServer: Server | undefined;

  const stop = async () => {
    clearInterval(ticker);
    await control?.close();
    metricsServer?.close();
    // Ctrl-C also reaches every child directly: none of them may be restarted from here on.
    for (const p of processes) p.markStopping();
    // nginx stops taking traffic first, then the monitoring, gateways, dispatchers; skills go last.
    for (const p of [...processes].sort((a, b) => stopRank(a) - stopRank(b)))
      await p.stop(config.SHUTDOWN_TIMEOUT_MS + 2_000);
    stopped = true;
    clearState(runDir);
  };

  try {
    for (const pool of skillPools) pool.start(config.SKILL_REPLICAS);
    dispatchers.start(config.DISPATCHER_COUNT);
    gateways.start(config.GATEWAY_COUNT);
    record();
    const deadline = Date.now() + readyTimeoutMs;
    // Ready means every process: each role by its own admin /readyz (skills SERVING and
    // announced, dispatchers consuming every skill's queue, gateways ready), and every skill
    // started here visible and live through each gateway, as a client will ask for it.
    await waitAllReady(
      [
        ...processes.map((p) => adminProbe(p, host)),
        ...gatewayPorts.map((port, i) =>
          skillsProbe(`gateway-${i + 1} (skills)`, `http://${host}:${port}`, devKey.key, config.SKILLS),
        ),
      ],
      deadline,
      print,
    );
    const nginx = new ManagedProcess(nginxSpec, onEvent);
    upstreams.process = nginx;
    processes.push(nginx);
    nginx.start();
    record();
    await waitAllReady([publicProbe(endpoint)], deadline, print);
    for (const spec of monitoring.specs) {
      const p = new ManagedProcess(spec, onEvent);
      processes.push(p);
      p.start();
    }
    metricsServer = await serveMetrics(scaler.registry, host);
    supervisorPort = (metricsServer.address() as AddressInfo).port;
    record();
    if (monitoring.alertmanagerUrl) await waitReady(`${monitoring.alertmanagerUrl}/-/ready`, deadline);
    if (monitoring.prometheusUrl) await waitReady(`${monitoring.prometheusUrl}/-/ready`, deadline);
    control = await serveControl(runDir, (req) =>
      handleControl(req, scaler, endpoint, WILDCARD.has(host) ? '127.0.0.1' : host),
    );
    ticker = setInterval(() => {
      scaler.tick();
      void health.tick();
    }, config.SCALE_SAMPLE_MS);
    ticker.unref();
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    endpoint,
    ...(tls ? { tls } : {}),
    prometheusUrl: monitoring.prometheusUrl,
    alertmanagerUrl: monitoring.alertmanagerUrl,
    devKey,
    processes,
    scaler,
    warnings,
    stop,
  };
}

/** A warning framed so it is not lost in start-up output. */
function loud(text: string): string {
  const bar = '!'.repeat(78);
  return `${bar}\n${text}\n${bar}`;
}

const WILDCARD = new Set(['0.0.0.0', '::', '[::]']);

/** Stop order: nginx first (no new traffic), then monitoring, gateways, dispatchers, skills. */
function stopRank(p: ManagedProcess): number {
  const n = p.spec.name;
  if (n === 'nginx') return 0;
  if (n.startsWith('gateway-')) return 2;
  if (n.startsWith('dispatcher-')) return 3;
  if (n.startsWith('skill-')) return 4;
  return 1;
}

/** Kept here too: benchmarks import it from the supervisor. */
export { waitReady };

/** The supervisor's own /metrics (replicas, scaling decisions), for Prometheus's supervisor job. */
async function serveMetrics(registry: Registry, host: string): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') return void res.writeHead(404).end();
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  server.unref();
  return server;
}

/** An nginx left behind by a supervisor that was killed outright still holds our port. */
async function killStaleNginx(prefix: string): Promise<void> {
  let pid = 0;
  try {
    pid = Number(readFileSync(join(prefix, 'nginx.pid'), 'utf8').trim());
  } catch {
    return; // no pid file: nothing to clean up
  }
  if (!pid || !isAlive(pid)) return;
  process.kill(pid, 'SIGQUIT');
  for (let i = 0; i < 50 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
}
