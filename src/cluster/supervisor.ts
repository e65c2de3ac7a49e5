import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../config/index.js';
import { ensureDevKey } from './dev-key.js';
import { ManagedProcess, type ProcessSpec } from './managed-process.js';
import { planMonitoring } from './monitoring.js';
import { nginxParamsFromConfig, renderNginxConfig } from './nginx.js';
import { checkPortFree, checkPostgres, checkRedis, findNginx, nginxVersion } from './preflight.js';
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
  await Promise.all([checkRedis(config), checkPostgres(config)]);
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

  const specs: ProcessSpec[] = [
    ...config.SKILLS.map((skill) => role(`skill-${skill}`, 'skill', { SKILL_NAME: skill, SKILL_PORT: '0' })),
    ...Array.from({ length: config.DISPATCHER_COUNT }, (_, i) => role(`dispatcher-${i + 1}`, 'dispatcher', {})),
    ...gatewayPorts.map((port, i) => role(`gateway-${i + 1}`, 'gateway', { GATEWAY_PORT: String(port) })),
  ];
  const nginxConf = join(nginxPrefix, 'nginx.conf');
  const nginxParams = nginxParamsFromConfig(
    // `up` balances over the gateways it starts itself.
    { ...config, NGINX_UPSTREAMS: [], NGINX_RESOLVER: undefined },
    { prefix: nginxPrefix, version: nginxVersion(nginxBin), ...(selfSigned ? { tlsFiles: selfSigned } : {}) },
  );
  writeFileSync(nginxConf, renderNginxConfig(nginxParams));
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
      processes: processes.map((p) => ({ name: p.spec.name, pid: p.pid, adminPort: p.adminPort })),
    });
    // Prometheus follows the cluster: a target per process, on the admin port it last reported.
    monitoring.writeTargets(processes);
  };
  const onEvent = (name: string, event: string) => {
    print(`[${new Date().toISOString()}] ${name}: ${event}`);
    // A reported admin port is a new scrape target: at once. Other events settle for a second.
    if (event.startsWith('admin port')) record();
    else setTimeout(record, 1_000).unref();
  };

  const stop = async () => {
    // Ctrl-C also reaches every child directly: none of them may be restarted from here on.
    for (const p of processes) p.markStopping();
    // Reverse order of start: nginx stops taking traffic first, skills go last.
    for (const p of [...processes].reverse()) await p.stop(config.SHUTDOWN_TIMEOUT_MS + 2_000);
    stopped = true;
    clearState(runDir);
  };

  try {
    for (const spec of specs) {
      const p = new ManagedProcess(spec, onEvent);
      processes.push(p);
      p.start();
    }
    record();
    const deadline = Date.now() + readyTimeoutMs;
    await Promise.all(gatewayPorts.map((port) => waitReady(`http://${host}:${port}/readyz`, deadline)));
    const nginx = new ManagedProcess(nginxSpec, onEvent);
    processes.push(nginx);
    nginx.start();
    record();
    await waitReady(`${endpoint}/readyz`, deadline);
    for (const spec of monitoring.specs) {
      const p = new ManagedProcess(spec, onEvent);
      processes.push(p);
      p.start();
    }
    record();
    if (monitoring.alertmanagerUrl) await waitReady(`${monitoring.alertmanagerUrl}/-/ready`, deadline);
    if (monitoring.prometheusUrl) await waitReady(`${monitoring.prometheusUrl}/-/ready`, deadline);
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
    stop,
  };
}

/** Polls `url` until it answers 200 or the deadline passes; the error names the last answer. */
export async function waitReady(url: string, deadline: number): Promise<void> {
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      const body = await res.text();
      if (res.ok) return;
      last = `${res.status} ${body.slice(0, 300)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not become ready: ${last}. Logs are in the run directory's logs/.`);
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
