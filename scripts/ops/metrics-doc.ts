import {
  DEFAULT_METRIC_PREFIXES,
  LABELS,
  type LabelKey,
  METRICS,
  type MetricSpec,
  type Role,
  SERIES_BUDGET,
} from '../../src/observability/catalogue.js';
import { SCRAPE_JOBS } from '../../src/observability/scrape-jobs.js';
import { usage } from './usage.js';

const ROLES: Role[] = ['gateway', 'dispatcher', 'skill', 'supervisor'];

function labelCell(spec: MetricSpec): string {
  const entries = Object.entries(spec.labels);
  return entries.length ? entries.map(([name]) => `\`${name}\``).join(', ') : '—';
}

function usedCell(where: string[] | undefined): string {
  if (!where?.length) return '—';
  const alerts = [...new Set(where.filter((w) => w.startsWith('alert ')).map((w) => w.slice(6)))];
  const boards = [...new Set(where.filter((w) => w.startsWith('dashboard ')).map((w) => w.slice(10).split(':')[0]))];
  const records = where.some((w) => w.startsWith('record ')) ? ['recording rules'] : [];
  return [...alerts.map((a) => `[${a}](runbooks/${a}.md)`), ...boards, ...records].join(', ');
}

/** docs/METRICS.md: the catalogue as a table per role, the label sets, and what uses each metric. */
export function metricsDoc(generatedNote: string): string {
  const used = usage();
  const specs = Object.values(METRICS) as MetricSpec[];
  const lines: string[] = [
    '# Metrics',
    '',
    `<!-- ${generatedNote} -->`,
    '',
    'Every metric skillserve exports, from [`src/observability/catalogue.ts`](../src/observability/catalogue.ts)',
    '(the code creates its metrics from those entries; a test checks this file is current). Names follow',
    '`skillserve_<area>_<what>_<unit>` in base units; every series also carries `role` (gateway, dispatcher,',
    'skill), and Prometheus adds `job` and `instance` from the scrape target. "Used by" links the alerts',
    '(each to its runbook) and dashboards that read the metric.',
    '',
    'Each role serves these on its internal admin port (`METRICS_PORT`, `/metrics`), never through nginx.',
    `Prometheus scrapes them as the jobs ${Object.values(SCRAPE_JOBS)
      .map((j) => `\`${j}\``)
      .join(', ')} (see [prometheus/prometheus.yml](../prometheus/prometheus.yml)).`,
    '',
  ];
  const sections: [string, MetricSpec[]][] = [
    ['Every role', specs.filter((s) => s.roles.length > 1)],
    ...ROLES.map((r): [string, MetricSpec[]] => [
      `${r[0]!.toUpperCase()}${r.slice(1)}`,
      specs.filter((s) => s.roles.length === 1 && s.roles[0] === r),
    ]),
  ];
  for (const [title, list] of sections) {
    lines.push(`## ${title}`, '', '| metric | type | labels | meaning | used by |', '| --- | --- | --- | --- | --- |');
    for (const spec of list) {
      const name = spec.pending ? `\`${spec.name}\` (waits for ${spec.pending})` : `\`${spec.name}\``;
      const buckets = spec.buckets ? ` Buckets: ${spec.buckets.join(', ')}.` : '';
      lines.push(
        `| ${name} | ${spec.type} | ${labelCell(spec)} | ${spec.help.replaceAll('|', '\\|')}.${buckets} | ${usedCell(used.get(spec.name))} |`,
      );
    }
    lines.push('');
  }
  lines.push(
    '## Labels',
    '',
    'A label takes values from a bounded set only. Values that come from outside (an HTTP method, a model',
    'named in a request) collapse to `other`; a skill a client names that the registry does not know is',
    'answered 404 and never becomes a label.',
    '',
    '| label (values of) | values |',
    '| --- | --- |',
  );
  for (const [key, spec] of Object.entries(LABELS) as [LabelKey, (typeof LABELS)[LabelKey]][]) {
    const values = 'values' in spec ? spec.values.map((v) => `\`${v}\``).join(', ') : `at most ${spec.bound}`;
    lines.push(`| \`${key}\` — ${spec.doc} | ${values} |`);
  }
  lines.push(
    '',
    '## Series budget',
    '',
    'The most series one process may export, held by `test/integration/monitoring.test.ts` while clients send',
    'random skill names, model names, paths, methods and ids:',
    '',
    ...ROLES.map((r) => `- ${r}: ${SERIES_BUDGET[r]}`),
    '',
    '## From elsewhere',
    '',
    `prom-client's default collectors add ${DEFAULT_METRIC_PREFIXES.map((p) => `\`${p}*\``).join(' and ')} to every role`,
    '(process CPU, resident memory, heap, event-loop lag). The exporters `up` starts add `nginx_*`',
    '(prometheus-nginx-exporter, from nginx stub_status), `redis_*` (prometheus-redis-exporter) and `pg_*`',
    '(prometheus-postgres-exporter). The rules and dashboards read these of them:',
    '',
    '| metric | used by |',
    '| --- | --- |',
  );
  const catalogued = new Set(specs.map((s) => s.name));
  for (const [name, where] of [...used].sort(([a], [b]) => a.localeCompare(b)))
    if (!catalogued.has(name) && !name.startsWith('skillserve:')) lines.push(`| \`${name}\` | ${usedCell(where)} |`);
  lines.push('');
  return lines.join('\n');
}
