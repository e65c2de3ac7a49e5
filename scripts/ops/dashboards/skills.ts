import { METRICS } from '../../../src/observability/catalogue.js';
import { quantile, ratio, sel, sumRate } from '../promql.js';
import { dashboard, labelTable, labelVariable, q, RATE, row, series, states } from './common.js';

const SKILL = 'skill=~"$skill"';
const cache = METRICS.cacheRequests.name;
const call = METRICS.skillCall.name;

const byVersion = (state: string, value: number) =>
  `(max by (instance, skill, model, version) (${sel(METRICS.modelState.name, SKILL, `state=~"${state}"`)}) == 1) * ${value}`;
/** One number per model version and replica: 1 unloaded (or draining), 2 ready, 3 loading, 4 failed. */
const MODEL_STATE = [
  byVersion('FAILED', 4),
  byVersion('LOADING', 3),
  byVersion('READY', 2),
  byVersion('UNLOADED|DRAINING', 1),
].join(' or ');

/** Skills: traffic, hit rate, latency per skill and model, replicas and their models and memory. */
export function skills() {
  return dashboard(
    'skillserve-skills',
    'skillserve / Skills',
    'Per skill: hit rate, latency by model, replicas SERVING, model states and memory per replica.',
    [
      row('Traffic'),
      series(
        'Cache hit rate per skill',
        `Share of cacheable answers of each skill served from the cache.\n\nMetric: \`${cache}\``,
        [
          q(
            ratio(
              sumRate(cache, RATE, 'skill', 'result="hit"', SKILL),
              sumRate(cache, RATE, 'skill', 'result=~"hit|miss|stale"', SKILL),
            ),
            '{{skill}}',
          ),
        ],
        { unit: 'percentunit', max: 1 },
      ),
      series(
        'Items computed per skill',
        `Items skill replicas computed per second, by outcome.\n\nMetric: \`${METRICS.skillItems.name}\``,
        [q(sumRate(METRICS.skillItems.name, RATE, 'skill, outcome', SKILL), '{{skill}} {{outcome}}')],
        { unit: 'ops', stack: true },
      ),
      row('Latency'),
      series(
        'Skill latency p95 by model',
        `95th percentile of the time a replica spends on one gRPC call, per skill and model (all replicas' buckets).\n\nMetric: \`${call}\``,
        [q(quantile(0.95, call, RATE, 'skill, model', SKILL), '{{skill}} {{model}}')],
        { unit: 's' },
      ),
      series(
        'Dispatcher → skill round trip p95',
        `95th percentile of the gRPC round trip as dispatchers see it (network and replica queueing included).\n\nMetric: \`${METRICS.dispatchCall.name}\``,
        [q(quantile(0.95, METRICS.dispatchCall.name, RATE, 'skill', SKILL), '{{skill}}')],
        { unit: 's' },
      ),
      row('Replicas'),
      series(
        'Replicas SERVING',
        `Replicas whose gRPC health is SERVING, and replicas the registry lists as live, per skill.\n\nMetrics: \`${METRICS.skillServing.name}\`, \`${METRICS.skillReplicas.name}\``,
        [
          q(`sum by (skill) (${sel(METRICS.skillServing.name, SKILL)})`, '{{skill}} serving'),
          q(`max by (skill) (${sel(METRICS.skillReplicas.name, SKILL)})`, '{{skill}} registered'),
        ],
      ),
      series(
        'Calls in flight per replica',
        `gRPC calls each replica works on now.\n\nMetric: \`${METRICS.skillInFlight.name}\``,
        [q(`sum by (skill, instance) (${sel(METRICS.skillInFlight.name, SKILL)})`, '{{skill}} {{instance}}')],
      ),
      states(
        'Model state per replica',
        `The state of every model version on every replica.\n\nMetric: \`${METRICS.modelState.name}\``,
        q(MODEL_STATE, '{{skill}} {{model}}@{{version}} {{instance}}'),
        { '1': ['unloaded', 'blue'], '2': ['ready', 'green'], '3': ['loading', 'yellow'], '4': ['failed', 'red'] },
      ),
      series(
        'Memory per replica',
        'Resident memory of each skill replica (the model is loaded inside it).\n\nMetric: `process_resident_memory_bytes`',
        [q('sum by (instance) (process_resident_memory_bytes{role="skill"})', '{{instance}}')],
        { unit: 'bytes' },
      ),
      labelTable(
        'Models loaded now',
        `Model versions READY on each replica.\n\nMetric: \`${METRICS.modelState.name}\``,
        q(`${sel(METRICS.modelState.name, SKILL, 'state="READY"')} == 1`, '', { instant: true, table: true }),
        { span: 24 },
      ),
    ],
    [labelVariable('skill', 'Skill', METRICS.skillReplicas.name)],
  );
}
