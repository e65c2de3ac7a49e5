import { METRICS } from '../../src/observability/catalogue.js';
import { OWN_JOBS, SCRAPE_JOBS } from '../../src/observability/scrape-jobs.js';
import { OBJECTIVES, SLO } from './objectives.js';
import { API, quantile, ratio, sel, sumRate } from './promql.js';

export type Severity = 'critical' | 'warning' | 'none';

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  severity: Severity;
  labels?: Record<string, string>;
  summary: string;
  description: string;
}

export interface RecordRule {
  record: string;
  expr: string;
  labels?: Record<string, string>;
}

export interface RuleGroup<R> {
  name: string;
  interval?: string;
  rules: R[];
}

/** Where an alert's runbook lives, relative to the repository root. */
export const runbookPath = (alert: string) => `docs/runbooks/${alert}.md`;

const http = METRICS.httpRequestDuration.name;
const cache = METRICS.cacheRequests.name;
const OWN = `job=~"${OWN_JOBS.join('|')}"`;

const o = OBJECTIVES;
const pct = (x: number) => `${+(x * 100).toFixed(3)} %`;

/** Every window the SLO alerts read, short and long. */
const sloWindows = [...new Set(SLO.windows.flatMap((w) => [w.short, w.long]))];
const budget = +(1 - SLO.target).toFixed(6);

/**
 * Recording rules, and the alerts that read them in the same group: rules of one group are
 * evaluated in order, so an alert sees this evaluation's recorded value, not the previous one's.
 */
export const RECORD_GROUPS: RuleGroup<RecordRule | AlertRule>[] = [
  {
    name: 'skillserve-slo',
    rules: [
      ...sloWindows.flatMap((w) => [
        { record: `skillserve:slo_requests:rate${w}`, expr: sumRate(`${http}_count`, w, '', API) },
        {
          // Good = fast enough and not a 5xx: one bucket of the same histogram, so a slow failure
          // is not counted twice.
          record: `skillserve:slo_good_requests:rate${w}`,
          expr: sumRate(`${http}_bucket`, w, '', API, `le="${SLO.latencyS}"`, 'status_class!="5xx"'),
        },
        {
          record: `skillserve:slo_error_ratio:rate${w}`,
          expr: `1 - ${ratio(`skillserve:slo_good_requests:rate${w}`, `skillserve:slo_requests:rate${w}`)}`,
        },
      ]),
      ...SLO.windows.map((w): AlertRule => ({
        alert: 'AvailabilityBudgetBurn',
        expr: `skillserve:slo_error_ratio:rate${w.long} > (${w.factor} * ${budget}) and skillserve:slo_error_ratio:rate${w.short} > (${w.factor} * ${budget})`,
        for: w.for,
        severity: w.severity,
        labels: { long: w.long, short: w.short },
        summary: `The availability SLO (${pct(SLO.target)}) is burning ${w.factor}x too fast.`,
        description: `{{ $value | humanizePercentage }} of API requests failed or took longer than ${SLO.latencyS} s over ${w.long} (and still over ${w.short}): at this rate the 30-day error budget lasts ${+(30 / w.factor).toFixed(1)} days.`,
      })),
    ],
  },
  {
    name: 'skillserve-queue.records',
    rules: [
      {
        // Every dispatcher reports the same queue: deduplicate with max, then add up the states
        // that are waiting (every infer job waits as `prioritized`).
        record: 'skillserve:queue_waiting_jobs:max',
        expr: `sum by (skill) (max by (skill, state) (${sel(METRICS.queueJobs.name, 'state=~"waiting|prioritized"')}))`,
      },
    ],
  },
];

export const ALERT_GROUPS: RuleGroup<AlertRule>[] = [
  {
    name: 'skillserve-meta',
    rules: [
      {
        alert: 'Watchdog',
        expr: 'vector(1)',
        severity: 'none',
        summary: 'Always firing: proves that rules are evaluated and alerts reach Alertmanager.',
        description:
          "A dead man's switch. Route it to a system that pages when it stops arriving; it is never a problem itself.",
      },
      ...OWN_JOBS.map((job): AlertRule => ({
        alert: 'ScrapeJobDown',
        expr: `absent(up{job="${job}"} == 1)`,
        for: '1m',
        severity: 'critical',
        labels: { job },
        summary: `No ${job} target is up.`,
        description: `Prometheus has no live target of job ${job}: every process of that role is down or no longer discovered (targets/${job}.json).`,
      })),
      {
        alert: 'SLIMetricsAbsent',
        expr: `absent(${http}_count)`,
        for: '10m',
        severity: 'critical',
        summary: 'The request SLI has no series.',
        description: `No ${http} series exist, so the availability and latency alerts cannot fire. A gateway that is not scraped, or a renamed metric, must not look like a perfect SLO.`,
      },
      {
        alert: 'PrometheusRuleFailures',
        expr: `increase(prometheus_rule_evaluation_failures_total{job="${SCRAPE_JOBS.prometheus}"}[5m]) > 0`,
        for: '5m',
        severity: 'warning',
        summary: 'Prometheus fails to evaluate rules.',
        description:
          'Rule group {{ $labels.rule_group }} failed {{ $value | humanize }} evaluations in 5 minutes; its alerts may be silent.',
      },
    ],
  },
  {
    name: 'skillserve-instances',
    rules: [
      {
        alert: 'InstanceDown',
        expr: `up{${OWN}} == 0`,
        for: o.instanceDownFor,
        severity: 'critical',
        summary: '{{ $labels.job }} instance {{ $labels.instance }} is down.',
        description:
          'Prometheus cannot scrape {{ $labels.instance }} of {{ $labels.job }}: the process is dead, hung or restarting.',
      },
      {
        alert: 'InstanceDown',
        expr: `up{job!~"${OWN_JOBS.join('|')}"} == 0`,
        for: o.instanceDownFor,
        severity: 'warning',
        summary: '{{ $labels.job }} instance {{ $labels.instance }} is down.',
        description:
          'Prometheus cannot scrape {{ $labels.instance }} of {{ $labels.job }} (an exporter or the monitoring itself): that part of the cluster is unobserved.',
      },
      {
        alert: 'InstanceNotReady',
        expr: `${METRICS.readinessState.name} == 0`,
        for: '2m',
        severity: 'warning',
        summary: '{{ $labels.role }} {{ $labels.instance }} is up but not ready.',
        description: 'Its readiness checks fail (see its admin /readyz for which and why); it is out of rotation.',
      },
    ],
  },
  {
    name: 'skillserve-requests',
    rules: [
      {
        alert: 'HighRequestLatency',
        expr: `${quantile(0.95, http, '5m', 'job', API)} > ${o.latencyAlertS}`,
        for: o.latencyFor,
        severity: 'warning',
        summary: `API p95 latency is above ${o.latencyAlertS * 1000} ms.`,
        description: `The 95th percentile of API request latency over all gateways is {{ $value | humanizeDuration }} (alert above ${o.latencyAlertS * 1000} ms, target ${o.latencyTargetS * 1000} ms).`,
      },
      {
        alert: 'HighErrorRate',
        expr: `${ratio(sumRate(`${http}_count`, o.errorFor, 'job', API, 'status_class="5xx"'), sumRate(`${http}_count`, o.errorFor, 'job', API))} > ${o.errorRatio}`,
        for: o.errorFor,
        severity: 'critical',
        summary: `More than ${pct(o.errorRatio)} of API requests fail.`,
        description: `{{ $value | humanizePercentage }} of API requests answered 5xx over ${o.errorFor} (alert above ${pct(o.errorRatio)}).`,
      },
      {
        alert: 'LowCacheHitRate',
        expr:
          `${ratio(sumRate(cache, '10m', 'job', 'result="hit"'), sumRate(cache, '10m', 'job', 'result=~"hit|miss|stale"'))} < ${o.cacheHitMin}` +
          ` and ${sumRate(cache, '10m', 'job', 'result=~"hit|miss|stale"')} > ${o.cacheMinTrafficPerS}`,
        for: o.cacheFor,
        severity: 'warning',
        summary: `Cache hit rate is below ${pct(o.cacheHitMin)}.`,
        description: `Only {{ $value | humanizePercentage }} of cacheable requests were answered from the cache over 10 minutes (alert below ${pct(o.cacheHitMin)} while there is traffic).`,
      },
    ],
  },
  {
    name: 'skillserve-dependencies',
    rules: [
      {
        alert: 'RedisUnavailable',
        expr: `max(redis_up) == 0 or max(${sel(METRICS.readinessCheck.name, 'check="redis"')}) == 0`,
        for: '1m',
        severity: 'critical',
        summary: 'Redis is unreachable.',
        description:
          'The Redis exporter or every process that checks Redis finds it down: nothing can be queued, async jobs wait, gateways run degraded.',
      },
      {
        alert: 'RedisDegradedMode',
        expr: `max by (job) (${sel(METRICS.breakerState.name, 'dependency="redis"')}) > 0 or sum by (job) (rate(${sel(METRICS.rateLimitDecisions.name, 'source="local"')}[2m])) > 0`,
        for: '1m',
        severity: 'warning',
        summary: 'Gateways are serving without Redis.',
        description:
          "A gateway's Redis circuit breaker is open or rate limits fall back to local buckets: cache hits are local only, skills are called directly, limits are approximate.",
      },
      {
        alert: 'PostgresUnavailable',
        expr: `max(pg_up) == 0 or max(${sel(METRICS.readinessCheck.name, 'check="postgres"')}) == 0`,
        for: '1m',
        severity: 'critical',
        summary: 'Postgres is unreachable.',
        description:
          'API keys that are not cached cannot be checked and the memory API answers 503 DATABASE_UNAVAILABLE.',
      },
      {
        alert: 'CircuitBreakerOpen',
        expr: `max by (skill) (${METRICS.skillBreakerState.name}) > 0`,
        for: '1m',
        severity: 'warning',
        summary: 'The circuit breaker to skill {{ $labels.skill }} is open.',
        description:
          'Calls to a replica of {{ $labels.skill }} failed repeatedly, so they go to its other replicas (state {{ $value }}: 1 open, 2 half-open); with every replica open, requests get 503 BREAKER_OPEN or a stale answer.',
      },
    ],
  },
  {
    name: 'skillserve-skills',
    rules: [
      {
        alert: 'SkillNoServingReplica',
        expr: `max by (skill) (${METRICS.skillReplicas.name}) unless on (skill) (sum by (skill) (${METRICS.skillServing.name}) > 0)`,
        for: '1m',
        severity: 'critical',
        summary: 'Skill {{ $labels.skill }} has no SERVING replica.',
        description:
          'Every request to {{ $labels.skill }} fails with 503 SKILL_UNAVAILABLE (or is served stale). Registered replicas: {{ $value }}.',
      },
      {
        alert: 'ModelLoadFailed',
        expr: `max by (skill, model, version) (${sel(METRICS.modelState.name, 'state="FAILED"')}) == 1`,
        for: '1m',
        severity: 'warning',
        summary: 'Model {{ $labels.model }} version {{ $labels.version }} of skill {{ $labels.skill }} failed to load.',
        description: 'A replica could not load the model; calls to it fail until it loads.',
      },
      {
        alert: 'QueueJobsWaitingTooLong',
        expr: `max by (skill) (${METRICS.queueOldestAge.name}) > ${o.queueOldestS}`,
        for: '2m',
        severity: 'warning',
        summary: 'Jobs for {{ $labels.skill }} wait too long in the queue.',
        description: `The job at the head of the {{ $labels.skill }} queue has waited {{ $value | humanizeDuration }} (alert above ${o.queueOldestS} s): dispatchers or replicas cannot keep up.`,
      },
      {
        alert: 'QueueBacklogGrowing',
        expr: `deriv(skillserve:queue_waiting_jobs:max[${o.queueGrowFor}]) > 0 and skillserve:queue_waiting_jobs:max > ${o.queueGrowMin}`,
        for: o.queueGrowFor,
        severity: 'warning',
        summary: 'The {{ $labels.skill }} queue keeps growing.',
        description: `More than ${o.queueGrowMin} jobs wait for {{ $labels.skill }} and the backlog has grown for ${o.queueGrowFor}: it will reach the depth limit and shed load with 503 OVERLOADED.`,
      },
    ],
  },
];

/** Every alert rule, wherever its group is. */
export function alertRules(): AlertRule[] {
  return [...ALERT_GROUPS, ...RECORD_GROUPS].flatMap((g) => g.rules.filter((r): r is AlertRule => 'alert' in r));
}

/** Every recording rule. */
export function recordRules(): RecordRule[] {
  return RECORD_GROUPS.flatMap((g) => g.rules.filter((r): r is RecordRule => 'record' in r));
}

/** Every alert name, once. */
export function alertNames(): string[] {
  return [...new Set(alertRules().map((r) => r.alert))];
}

/** A group as Prometheus reads it (the runbook link and severity become the rule's labels and annotations). */
export function toPrometheus(group: RuleGroup<AlertRule | RecordRule>): object {
  return {
    name: group.name,
    ...(group.interval ? { interval: group.interval } : {}),
    rules: group.rules.map((r) =>
      'alert' in r
        ? {
            alert: r.alert,
            expr: r.expr,
            ...(r.for ? { for: r.for } : {}),
            labels: { severity: r.severity, ...r.labels },
            annotations: { summary: r.summary, description: r.description, runbook_url: runbookPath(r.alert) },
          }
        : { record: r.record, expr: r.expr, ...(r.labels ? { labels: r.labels } : {}) },
    ),
  };
}
