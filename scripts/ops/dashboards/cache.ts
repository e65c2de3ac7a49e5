import { METRICS } from '../../../src/observability/catalogue.js';
import { OBJECTIVES } from '../objectives.js';
import { sumRate } from '../promql.js';
import { dashboard, q, RATE, row, series } from './common.js';
import { hitRatio } from './overview.js';

/** Cache and limits: what the cache does at each level, refresh-ahead, rate limits by tier. */
export function cacheAndLimits() {
  const cache = METRICS.cacheRequests.name;
  return dashboard(
    'skillserve-cache',
    'skillserve / Cache and limits',
    'The response cache (in-process and Redis levels, refresh-ahead) and rate-limit decisions by tier.',
    [
      row('Cache'),
      series(
        'Hit rate',
        `Share of cacheable answers served from the cache, overall and per skill. The dashed line is the ${OBJECTIVES.cacheHitMin * 100} % alert threshold.\n\nMetric: \`${cache}\``,
        [q(hitRatio(RATE), 'all'), q(hitRatio(RATE, 'skill'), '{{skill}}')],
        { unit: 'percentunit', max: 1, line: OBJECTIVES.cacheHitMin },
      ),
      series(
        'Answers by cache result',
        `Inference answers per second by X-Cache: hit, miss, stale, bypass (not cacheable).\n\nMetric: \`${cache}\``,
        [q(sumRate(cache, RATE, 'result'), '{{result}}')],
        { unit: 'reqps', stack: true, colors: { hit: 'green', miss: 'orange', stale: 'yellow', bypass: 'blue' } },
      ),
      series(
        'Lookups by level',
        `Cache lookups per second at each level (l1: in-process; redis) and result.\n\nMetric: \`${METRICS.cacheLookups.name}\``,
        [q(sumRate(METRICS.cacheLookups.name, RATE, 'level, result'), '{{level}} {{result}}')],
        { unit: 'ops' },
      ),
      series(
        'In-process cache size',
        `Entries and bytes in each gateway's l1 cache.\n\nMetrics: \`${METRICS.cacheEntries.name}\`, \`${METRICS.cacheBytes.name}\``,
        [
          q(`sum by (instance) (${METRICS.cacheEntries.name})`, '{{instance}} entries'),
          q(`sum by (instance) (${METRICS.cacheBytes.name})`, '{{instance}} bytes'),
        ],
      ),
      series(
        'Refresh-ahead',
        `Entries recomputed before they expire, by outcome.\n\nMetric: \`${METRICS.cacheRefreshes.name}\``,
        [q(sumRate(METRICS.cacheRefreshes.name, RATE, 'outcome'), '{{outcome}}')],
        { unit: 'ops' },
      ),
      row('Rate limits'),
      series(
        'Decisions by tier and outcome',
        `Rate-limit decisions per second.\n\nMetric: \`${METRICS.rateLimitDecisions.name}\``,
        [q(sumRate(METRICS.rateLimitDecisions.name, RATE, 'tier, outcome'), '{{tier}} {{outcome}}')],
        { unit: 'ops', stack: true },
      ),
      series(
        'Decided locally',
        `Decisions taken by the local fallback buckets (Redis out) rather than the cluster-wide bucket in Redis.\n\nMetric: \`${METRICS.rateLimitDecisions.name}\``,
        [q(sumRate(METRICS.rateLimitDecisions.name, RATE, 'source'), '{{source}}')],
        { unit: 'ops', colors: { local: 'orange', redis: 'green' } },
      ),
    ],
  );
}
