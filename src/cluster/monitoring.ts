import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/index.js';
import { SCRAPE_JOBS, type ScrapeJob } from '../observability/scrape-jobs.js';
import type { ManagedProcess, ProcessSpec } from './managed-process.js';
import { PreflightError } from './preflight.js';

/** The repository's prometheus/ folder: the config, rules/ and alertmanager.yml. */
export const prometheusAssetsDir = fileURLToPath(new URL('../../prometheus/', import.meta.url));

/** The Debian binaries (scripts/setup.sh installs them). */
export const MONITORING_BINARIES = {
  prometheus: 'prometheus',
  alertmanager: 'prometheus-alertmanager',
  nginx: 'prometheus-nginx-exporter',
  redis: 'prometheus-redis-exporter',
  postgres: 'prometheus-postgres-exporter',
} as const;

export interface MonitoringPlan {
  /** Started after nginx, in this order (stopped first, in reverse). */
  specs: ProcessSpec[];
  prometheusUrl?: string;
  alertmanagerUrl?: string;
  /** Writes targets/<job>.json from the processes' admin ports (and the supervisor's own); call whenever they change. */
  writeTargets(processes: readonly ManagedProcess[], supervisorPort?: number): void;
}

/** The scrape job of a supervised process, from its name (gateway-1, dispatcher-1, skill-nlp). */
function jobOf(name: string): ScrapeJob | undefined {
  if (name.startsWith('gateway-')) return SCRAPE_JOBS.gateway;
  if (name.startsWith('dispatcher-')) return SCRAPE_JOBS.dispatcher;
  if (name.startsWith('skill-')) return SCRAPE_JOBS.skill;
  return undefined;
}

/** The exporters' Go library reads `sslmode`; without one it insists on TLS, which a local Postgres lacks. */
export function exporterDsn(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  if (!url.searchParams.has('sslmode')) url.searchParams.set('sslmode', 'disable');
  return url.toString();
}

function requireBinary(bin: string, what: string): void {
  try {
    execFileSync(bin, ['--version'], { stdio: 'ignore' });
  } catch {
    throw new PreflightError(
      `${what} (${bin}) was not found.\n` +
        `  \`npm run up\` installs it (scripts/setup.sh), or apt-get install -y ${bin === 'prometheus-alertmanager' ? 'prometheus-alertmanager' : bin};\n` +
        `  PROMETHEUS=off (or ALERTMANAGER=off) starts the cluster without it.`,
    );
  }
}

/**
 * What `up` runs to watch the cluster: Prometheus with skillserve's rules (its config and rules
 * copied into the run directory, its data kept there), Alertmanager, and the nginx, Redis and
 * Postgres exporters. Prometheus finds every process through file_sd target files this plan
 * rewrites as the cluster changes: a process that died keeps its target (and shows as down) until
 * it is back on its new admin port.
 */
export function planMonitoring(config: Config, runDir: string, env: NodeJS.ProcessEnv, logDir: string): MonitoringPlan {
  const host = config.HOST;
  const dir = join(runDir, 'prometheus');
  const targetsDir = join(dir, 'targets');
  const none: MonitoringPlan = { specs: [], writeTargets: () => undefined };
  if (config.PROMETHEUS === 'off') return none;

  for (const [what, bin] of Object.entries(MONITORING_BINARIES))
    if (what !== 'alertmanager' || config.ALERTMANAGER === 'on') requireBinary(bin, what);
  mkdirSync(targetsDir, { recursive: true });
  rmSync(join(dir, 'rules'), { recursive: true, force: true });
  cpSync(join(prometheusAssetsDir, 'rules'), join(dir, 'rules'), { recursive: true });
  cpSync(join(prometheusAssetsDir, 'prometheus.yml'), join(dir, 'prometheus.yml'));

  const spec = (name: string, command: string, args: string[], extraEnv: Record<string, string> = {}): ProcessSpec => ({
    name,
    command,
    args,
    env: { ...env, ...extraEnv },
    logFile: join(logDir, `${name}.log`),
    ipc: false,
  });
  const at = (port: number) => `${host}:${port}`;
  const exporters: [ScrapeJob, number][] = [
    [SCRAPE_JOBS.nginx, config.NGINX_EXPORTER_PORT],
    [SCRAPE_JOBS.redis, config.REDIS_EXPORTER_PORT],
    [SCRAPE_JOBS.postgres, config.POSTGRES_EXPORTER_PORT],
  ];
  const specs: ProcessSpec[] = [
    spec('nginx-exporter', MONITORING_BINARIES.nginx, [
      `-nginx.scrape-uri=http://${at(config.NGINX_STATUS_PORT)}/stub_status`,
      `-web.listen-address=${at(config.NGINX_EXPORTER_PORT)}`,
    ]),
    // Credentials go in the environment, not the command line (which `ps` shows).
    spec('redis-exporter', MONITORING_BINARIES.redis, [`-web.listen-address=${at(config.REDIS_EXPORTER_PORT)}`], {
      REDIS_ADDR: config.REDIS_URL,
    }),
    spec(
      'postgres-exporter',
      MONITORING_BINARIES.postgres,
      [`--web.listen-address=${at(config.POSTGRES_EXPORTER_PORT)}`],
      {
        DATA_SOURCE_NAME: exporterDsn(config.DATABASE_URL),
      },
    ),
  ];
  const alertmanager = config.ALERTMANAGER === 'on';
  if (alertmanager) {
    specs.push(
      spec('alertmanager', MONITORING_BINARIES.alertmanager, [
        `--config.file=${join(prometheusAssetsDir, 'alertmanager.yml')}`,
        `--storage.path=${join(runDir, 'alertmanager')}`,
        `--web.listen-address=${at(config.ALERTMANAGER_PORT)}`,
        // A single Alertmanager: no gossip port.
        '--cluster.listen-address=',
        '--log.level=warn',
      ]),
    );
  }
  const prometheusUrl = `http://${at(config.PROMETHEUS_PORT)}`;
  specs.push(
    spec('prometheus', MONITORING_BINARIES.prometheus, [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      '--storage.tsdb.retention.time=7d',
      `--web.listen-address=${at(config.PROMETHEUS_PORT)}`,
      `--web.external-url=${prometheusUrl}/`,
      '--web.enable-lifecycle',
      '--log.level=warn',
    ]),
  );

  const write = (job: ScrapeJob, groups: { targets: string[]; labels: Record<string, string> }[]) => {
    // Written whole, then renamed: Prometheus never reads half a file.
    const file = join(targetsDir, `${job}.json`);
    writeFileSync(`${file}.tmp`, `${JSON.stringify(groups, null, 2)}\n`);
    renameSync(`${file}.tmp`, file);
  };
  const fixed = (job: ScrapeJob, port: number, instance: string) =>
    write(job, [{ targets: [at(port)], labels: { instance } }]);
  for (const [job, port] of exporters) fixed(job, port, job);
  fixed(SCRAPE_JOBS.prometheus, config.PROMETHEUS_PORT, 'prometheus');
  if (alertmanager) fixed(SCRAPE_JOBS.alertmanager, config.ALERTMANAGER_PORT, 'alertmanager');
  else write(SCRAPE_JOBS.alertmanager, []);

  return {
    specs,
    prometheusUrl,
    alertmanagerUrl: alertmanager ? `http://${at(config.ALERTMANAGER_PORT)}` : undefined,
    writeTargets(processes, supervisorPort) {
      write(
        SCRAPE_JOBS.supervisor,
        supervisorPort ? [{ targets: [at(supervisorPort)], labels: { instance: 'supervisor' } }] : [],
      );
      const byJob = new Map<ScrapeJob, { targets: string[]; labels: Record<string, string> }[]>(
        [SCRAPE_JOBS.gateway, SCRAPE_JOBS.dispatcher, SCRAPE_JOBS.skill].map((j) => [j, []]),
      );
      for (const p of processes) {
        const job = jobOf(p.spec.name);
        if (!job || p.lastAdminPort === undefined) continue;
        byJob.get(job)!.push({ targets: [at(p.lastAdminPort)], labels: { instance: p.spec.name } });
      }
      for (const [job, groups] of byJob) write(job, groups);
    },
  };
}
