#!/usr/bin/env node
import { fileURLToPath } from 'node:url';
import { ConfigError, type Config, loadConfig } from './config/index.js';
import { keysCommand } from './auth/keys-command.js';
import { nginxConfigCommand, nginxConfigUsage } from './cluster/nginx-command.js';
import { PreflightError } from './cluster/preflight.js';
import { readState, isAlive, stopCluster } from './cluster/state.js';
import { askSupervisor } from './cluster/control.js';
import { type ClusterStatus, formatStatus } from './cluster/status.js';
import { startCluster } from './cluster/supervisor.js';
import { UsageError } from './lib/usage-error.js';

const usage = `skillserve — a load-balanced inference cluster

Usage: skillserve <command>

  up           start the whole cluster in the foreground (nginx, gateways, dispatchers, skills,
               Prometheus, Alertmanager and the exporters)
  down         stop the cluster started by \`up\` (from another shell)
  status       show the cluster's processes (CPU, memory, restarts), replicas per role, the
               autoscaler's last decisions, the circuit breakers and readiness
  scale        set replica counts of a running cluster: skillserve scale gateway=4 skill:onnx=2
  keys         create, list and revoke API keys (skillserve keys --help)
  gateway      run one gateway (HTTP API)
  dispatcher   run one dispatcher (BullMQ workers → gRPC)
  skill        run one skill service (gRPC), SKILL_NAME selects which
  probe        health check of a running role, for containers (skillserve probe --help)
  nginx-config render nginx's config for a container or pod (skillserve nginx-config --help)

Every setting comes from environment variables; see the README's configuration table.`;

const print = (line: string) => process.stdout.write(`${line}\n`);

async function up(config: Config): Promise<void> {
  print('skillserve: checking Redis and Postgres, starting the cluster…');
  const cluster = await startCluster({ config, cliPath: fileURLToPath(import.meta.url), print });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    print(`\nskillserve: ${signal} — stopping every process…`);
    cluster.stop().then(
      () => {
        print('skillserve: stopped.');
        process.exit(0);
      },
      (err: unknown) => {
        print(`skillserve: stop failed: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  const key = cluster.devKey.key;
  // With TLS on, the examples use HTTPS and the certificate to trust.
  const base = cluster.tls ? `${cluster.tls.endpoint}` : cluster.endpoint;
  const curl = cluster.tls ? `curl --cacert ${cluster.tls.certFile}` : 'curl';
  const rows = cluster.processes.map(
    (p) => `  ${p.spec.name.padEnd(18)} pid ${String(p.pid ?? '-').padEnd(8)} log ${p.spec.logFile}`,
  );
  print(`
skillserve is up: every process is ready (gateways, dispatchers consuming, skills SERVING and registered).

  endpoint   ${
    cluster.tls
      ? `${cluster.tls.endpoint} (HTTP/2, TLS 1.2+; ${cluster.tls.selfSigned ? 'self-signed ' : ''}certificate ${cluster.tls.certFile})
             plain HTTP on ${cluster.endpoint} (loopback only)`
      : cluster.endpoint
  }
${cluster.prometheusUrl ? `  prometheus ${cluster.prometheusUrl}  (alerts: ${cluster.prometheusUrl}/alerts)\n` : ''}${
    cluster.alertmanagerUrl ? `  alertmanager ${cluster.alertmanagerUrl}\n` : ''
  }  gateways   ${config.GATEWAY_COUNT} behind nginx (least_conn), dispatchers ${config.DISPATCHER_COUNT}, skills ${config.SKILLS.join(', ')}

${rows.join('\n')}

  dev key    ${key}
             (tenant "dev", premium; ${cluster.devKey.created ? 'created now' : 'created earlier'}, kept in ${cluster.devKey.file})

Try:
  ${curl} -s ${base}/v1/skills -H 'authorization: Bearer ${key}'
  ${curl} -si ${base}/v1/skills/nlp/infer -H 'authorization: Bearer ${key}' \\
       -H 'content-type: application/json' \\
       -d '{"input":"My sister Maria lives in Madrid and loves her new job.","task":"sentiment"}'
${
  config.SKILLS.includes('onnx')
    ? `  ${curl} -s ${base}/v1/skills/onnx/infer -H 'authorization: Bearer ${key}' \\
       -H 'content-type: application/json' \\
       -d '{"model":"classifier","inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":[0.5,-1,2,0.25]}]}'
`
    : ''
}
Ctrl-C (or \`skillserve down\` in another shell) stops every process.`);
  for (const warning of cluster.warnings) print(`\n${warning}`);
}

async function status(config: Config): Promise<void> {
  const state = readState(config.RUN_DIR);
  if (!state || !isAlive(state.supervisorPid)) {
    print('skillserve: no cluster is running (from this RUN_DIR).');
    process.exitCode = 1;
    return;
  }
  print(`supervisor pid ${state.supervisorPid}, up since ${state.startedAt}, endpoint ${state.endpoint}`);
  if (state.prometheusUrl) print(`prometheus ${state.prometheusUrl}`);
  if (state.alertmanagerUrl) print(`alertmanager ${state.alertmanagerUrl}`);
  try {
    const live = (await askSupervisor(config.RUN_DIR, { cmd: 'status' }, 15_000)) as ClusterStatus;
    for (const line of formatStatus(live)) print(line);
  } catch (err) {
    // An older supervisor, or one still starting: what the state file knows.
    print(`(no live status: ${(err as Error).message})`);
    for (const p of state.processes)
      print(
        `  ${p.name.padEnd(18)} pid ${String(p.pid ?? '-').padEnd(8)} ${(isAlive(p.pid) ? 'running' : 'DOWN').padEnd(8)}` +
          (p.adminPort ? ` admin :${p.adminPort}` : ''),
      );
  }
  try {
    const res = await fetch(`${state.endpoint}/readyz`, { signal: AbortSignal.timeout(3_000) });
    print(`readyz: ${res.status} ${await res.text()}`);
  } catch (err) {
    print(`readyz: no answer (${(err as Error).message})`);
    process.exitCode = 1;
  }
}

/** `skillserve scale gateway=4 skill:onnx=2`: asks the running supervisor, waits for the changes. */
async function scale(config: Config, args: string[]): Promise<void> {
  const counts: Record<string, number> = {};
  for (const arg of args) {
    const m = /^(gateway|dispatcher|skill:[a-z][a-z0-9-]*)=(\d+)$/.exec(arg);
    if (!m) throw new UsageError(`"${arg}" is not <role>=<count> (gateway=4, dispatcher=2, skill:onnx=2)`);
    counts[m[1]!] = Number(m[2]);
  }
  if (args.length === 0) throw new UsageError('usage: skillserve scale gateway=4 skill:onnx=2');
  const result = (await askSupervisor(config.RUN_DIR, { cmd: 'scale', counts })) as { changes: string[] };
  for (const line of result.changes) print(`skillserve: ${line}`);
}

async function main(): Promise<void> {
  const command = process.argv[2];
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    print(usage);
    return;
  }
  const config = loadConfig();
  switch (command) {
    case 'up':
      return up(config);
    case 'down': {
      const result = await stopCluster(config.RUN_DIR, config.SHUTDOWN_TIMEOUT_MS + 10_000);
      print(result === 'stopped' ? 'skillserve: stopped.' : 'skillserve: no cluster is running (from this RUN_DIR).');
      return;
    }
    case 'status':
      return status(config);
    case 'scale':
      return scale(config, process.argv.slice(3));
    case 'keys':
      return keysCommand(config, process.argv.slice(3), print);
    case 'gateway':
      return (await import('./gateway/main.js')).runGateway(config);
    case 'dispatcher':
      return (await import('./queue/main.js')).runDispatcher(config);
    case 'skill':
      return (await import('./skills/main.js')).runSkill(config);
    case 'probe': {
      // Loaded here: a health check every few seconds should not pay for the other commands.
      const { probeTarget, probeUsage, runProbe } = await import('./cluster/probe.js');
      if (process.argv.includes('--help')) {
        print(probeUsage);
        return;
      }
      const result = await runProbe(probeTarget(config, process.argv.slice(3)));
      print(result.detail);
      process.exitCode = result.healthy ? 0 : 1;
      return;
    }
    case 'nginx-config':
      if (process.argv.includes('--help')) {
        print(nginxConfigUsage);
        return;
      }
      return nginxConfigCommand(config, process.argv.slice(3), print);
    default:
      print(`skillserve: unknown command "${command}"\n\n${usage}`);
      process.exitCode = 2;
  }
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof PreflightError || err instanceof UsageError) {
    process.stderr.write(`skillserve: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`skillserve: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
