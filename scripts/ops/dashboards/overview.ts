import { METRICS } from '../../../src/observability/catalogue.js';
import { OWN_JOBS } from '../../../src/observability/scrape-jobs.js';
import { OBJECTIVES, SLO } from '../objectives.js';
import { API, mean, quantile, ratio, sumRate } from '../promql.js';
import {
  dashboard,
  highIsGood,
  labelTable,
  lowIsGood,
  q,
  RATE,
  row,
  series,
  states,
  thresholds,
  tile,
} from './common.js';

const http = METRICS.httpRequestDuration.name;
const cache = METRICS.cacheRequests.name;
const OWN = `job=~"${OWN_JOBS.join('|')}"`;
export const STATUS_COLORS = { '2xx': 'green', '3xx': 'blue', '4xx': 'orange', '5xx': 'red' };

/** The API's 5xx share. */
export const errorRatio = (window: string) =>
  ratio(
    `(${sumRate(`${http}_count`, window, '', API, 'status_class="5xx"')} or vector(0))`,
    sumRate(`${http}_count`, window, '', API),
  );
/** Share of cacheable answers served from the cache. */
export const hitRatio = (window: string, by = '') =>
  ratio(sumRate(cache, window, by, 'result="hit"'), sumRate(cache, window, by, 'result=~"hit|miss|stale"'));

/**
 * Instance health in one number per target: -1 down (not scraped), 0 not ready, 1 degraded,
 * 2 ready. Exporters have no readiness: up counts as ready.
 */
export const INSTANCE_STATE = `max by (job, instance) (${METRICS.readinessState.name}) or (3 * up - 1)`;
export const INSTANCE_STATES: Record<string, [string, string]> = {
  '-1': ['down', 'red'],
  '0': ['not ready', 'orange'],
  '1': ['degraded', 'yellow'],
  '2': ['ready', 'green'],
};

/** The on-call overview: the brief's six panels, the SLO and what is firing. */
export function overview() {
  const o = OBJECTIVES;
  return dashboard(
    'skillserve-overview',
    'skillserve / Overview',
    'Is skillserve healthy? Latency against the 200 ms target, throughput, errors, instances, cache and resources, with the alerts that fire.',
    [
      row('Now'),
      tile(
        'Requests / s',
        `API requests per second (health checks excluded).\n\nMetric: \`${http}\``,
        sumRate(`${http}_count`, RATE, '', API),
        {
          unit: 'reqps',
        },
      ),
      tile(
        'p95 latency',
        `95th percentile of API request latency, from the buckets of every gateway.\n\nMetric: \`${http}\``,
        quantile(0.95, http, RATE, '', API),
        {
          unit: 's',
          steps: lowIsGood(o.latencyTargetS, o.latencyAlertS),
          noValue: 'No traffic',
        },
      ),
      tile(
        'Error rate',
        `Share of API requests answered 5xx (including 503 OVERLOADED).\n\nMetric: \`${http}\``,
        errorRatio(RATE),
        {
          unit: 'percentunit',
          steps: lowIsGood(0.01, o.errorRatio),
          noValue: 'No traffic',
          decimals: 2,
        },
      ),
      tile(
        'Cache hit rate',
        `Share of cacheable answers served from the cache.\n\nMetric: \`${cache}\``,
        hitRatio(RATE),
        {
          unit: 'percentunit',
          steps: highIsGood(o.cacheHitMin, 0.8),
          noValue: 'No traffic',
        },
      ),
      tile(
        'Instances down',
        'Scrape targets of skillserve processes Prometheus cannot reach.\n\nMetric: `up`',
        `count(up{${OWN}} == 0) or vector(0)`,
        {
          steps: thresholds([
            ['green', null],
            ['red', 1],
          ]),
        },
      ),
      tile(
        'Availability (1 h)',
        `Share of API requests that succeeded within ${SLO.latencyS} s over the last hour; the SLO is ${SLO.target * 100} %.\n\nRecording rule: \`skillserve:slo_error_ratio:rate1h\``,
        '1 - skillserve:slo_error_ratio:rate1h',
        { unit: 'percentunit', steps: highIsGood(0.99, SLO.target), noValue: 'No traffic', decimals: 3 },
      ),
      row('Requests'),
      series(
        'Request latency',
        `p50, p95 and p99 of API request latency over all gateways (aggregated from histogram buckets), and the mean. The dashed line is the ${o.latencyTargetS * 1000} ms target.\n\nMetric: \`${http}\``,
        [
          q(quantile(0.5, http, RATE, '', API), 'p50'),
          q(quantile(0.95, http, RATE, '', API), 'p95'),
          q(quantile(0.99, http, RATE, '', API), 'p99'),
          q(mean(http, RATE, '', API), 'mean'),
        ],
        {
          unit: 's',
          line: o.latencyTargetS,
          colors: { p50: 'light-blue', p95: 'blue', p99: 'dark-blue', mean: 'purple' },
        },
      ),
      series(
        'Throughput by status',
        `API requests per second by status class.\n\nMetric: \`${http}\``,
        [q(sumRate(`${http}_count`, RATE, 'status_class', API), '{{status_class}}')],
        { unit: 'reqps', stack: true, bars: true, colors: STATUS_COLORS },
      ),
      series(
        'Error rate',
        `Share of API requests answered 5xx. The dashed line is the ${o.errorRatio * 100} % alert threshold.\n\nMetric: \`${http}\``,
        [q(errorRatio(RATE), '5xx')],
        { unit: 'percentunit', line: o.errorRatio, colors: { '5xx': 'red' } },
      ),
      series(
        'Throughput by route',
        `Requests per second by route and status class.\n\nMetric: \`${http}\``,
        [q(sumRate(`${http}_count`, RATE, 'route, status_class', API), '{{route}} {{status_class}}')],
        { unit: 'reqps', stack: true },
      ),
      row('Instances and cache'),
      states(
        'Instance health',
        'Every scrape target: ready, degraded (serving without an optional dependency, e.g. a gateway without Redis), not ready, or down.\n\nMetrics: `skillserve_readiness_state`, `up`',
        q(INSTANCE_STATE, '{{job}} {{instance}}'),
        INSTANCE_STATES,
      ),
      series(
        'Cache hits and misses',
        `Cacheable answers per second by what the cache did: hit, miss (computed), stale (expired entry served because the skill could not answer).\n\nMetric: \`${cache}\``,
        [q(sumRate(cache, RATE, 'result', 'result=~"hit|miss|stale"'), '{{result}}')],
        { unit: 'reqps', stack: true, colors: { hit: 'green', miss: 'orange', stale: 'yellow' } },
      ),
      row('Resources'),
      series(
        'CPU per instance',
        'CPU time per second each process uses (1 = one core).\n\nMetric: `process_cpu_seconds_total`',
        [q(`sum by (job, instance) (rate(process_cpu_seconds_total[${RATE}]))`, '{{job}} {{instance}}')],
        { unit: 'percentunit', stack: true },
      ),
      series(
        'Memory per instance',
        'Resident memory of each process.\n\nMetric: `process_resident_memory_bytes`',
        [q('sum by (job, instance) (process_resident_memory_bytes)', '{{job}} {{instance}}')],
        { unit: 'bytes', stack: true },
      ),
      row('Alerts'),
      labelTable(
        'Firing alerts',
        "Alerts Prometheus is firing now (Watchdog always fires: it proves alerting works). Each alert links its runbook in Alertmanager and in Grafana's alerting view.\n\nMetric: `ALERTS`",
        q('ALERTS{alertstate="firing"}', '', { instant: true, table: true }),
        { span: 24 },
      ),
    ],
  );
}
