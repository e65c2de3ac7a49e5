import { METRICS } from '../../../src/observability/catalogue.js';
import { SCRAPE_JOBS } from '../../../src/observability/scrape-jobs.js';
import { sel, sumRate } from '../promql.js';
import { dashboard, q, RATE, row, series, states } from './common.js';

const BREAKER: Record<string, [string, string]> = {
  '0': ['closed', 'green'],
  '1': ['open', 'red'],
  '2': ['half-open', 'yellow'],
};

/** Dependencies: Redis, Postgres and nginx as skillserve and their exporters see them. */
export function dependencies() {
  return dashboard(
    'skillserve-dependencies',
    'skillserve / Dependencies',
    'Redis, Postgres and nginx: what the processes see (breakers, readiness checks, pools, degraded answers) and what the exporters report.',
    [
      row('Redis'),
      states(
        'Redis circuit breaker per gateway',
        `State of each gateway's Redis breaker: closed, open (Redis skipped), half-open (trying again).\n\nMetric: \`${METRICS.breakerState.name}\``,
        q(`max by (instance) (${sel(METRICS.breakerState.name, 'dependency="redis"')})`, '{{instance}}'),
        BREAKER,
      ),
      series(
        'Degraded answers',
        `Requests served without Redis, by reason.\n\nMetric: \`${METRICS.degradedRequests.name}\``,
        [q(sumRate(METRICS.degradedRequests.name, RATE, 'reason'), '{{reason}}')],
        { unit: 'reqps', colors: { redis: 'orange', direct: 'red' } },
      ),
      series(
        'Request-path round trips',
        `Redis round trips the gateways make on the request path, by what they carry, and the commands Redis processes.\n\nMetrics: \`${METRICS.redisRoundTrips.name}\`, \`redis_commands_processed_total\``,
        [
          q(sumRate(METRICS.redisRoundTrips.name, RATE, 'op'), '{{op}}'),
          q(`sum(rate(redis_commands_processed_total[${RATE}]))`, 'commands (Redis)'),
        ],
        { unit: 'ops' },
      ),
      series(
        'Redis memory and clients',
        'Memory Redis uses and clients connected, from the Redis exporter.\n\nMetrics: `redis_memory_used_bytes`, `redis_connected_clients`',
        [q('max(redis_memory_used_bytes)', 'memory'), q('max(redis_connected_clients)', 'clients')],
      ),
      row('Postgres'),
      series(
        'Gateway pool',
        `Connections of the gateways' Postgres pools by state, queries waiting for one, and the limit.\n\nMetrics: \`${METRICS.pgPoolConnections.name}\`, \`${METRICS.pgPoolWaiting.name}\`, \`${METRICS.pgPoolMax.name}\``,
        [
          q(`sum by (state) (${METRICS.pgPoolConnections.name})`, '{{state}}'),
          q(`sum(${METRICS.pgPoolWaiting.name})`, 'waiting'),
          q(`sum(${METRICS.pgPoolMax.name})`, 'limit'),
        ],
        { colors: { busy: 'orange', idle: 'green', waiting: 'red', limit: 'text' } },
      ),
      series(
        'Postgres backends',
        'Connections per database, from the Postgres exporter.\n\nMetric: `pg_stat_database_numbackends`',
        [q('sum by (datname) (pg_stat_database_numbackends)', '{{datname}}')],
      ),
      row('Reachability'),
      states(
        'Readiness checks',
        `Each process's readiness checks at scrape time (redis, postgres, skills, model).\n\nMetric: \`${METRICS.readinessCheck.name}\``,
        q(`min by (instance, check) (${METRICS.readinessCheck.name})`, '{{instance}} {{check}}'),
        { '0': ['failing', 'red'], '1': ['ok', 'green'] },
      ),
      states(
        'Dependencies up (exporters)',
        `Whether each exporter reaches its service, and whether Prometheus reaches the exporters.\n\nMetrics: \`redis_up\`, \`pg_up\`, \`nginx_up\`, \`up\``,
        q(
          `max by (job) (redis_up or pg_up or nginx_up) or max by (job) (up{job=~"${SCRAPE_JOBS.redis}|${SCRAPE_JOBS.postgres}|${SCRAPE_JOBS.nginx}"})`,
          '{{job}}',
        ),
        { '0': ['down', 'red'], '1': ['up', 'green'] },
      ),
      row('nginx'),
      series(
        'nginx connections and requests',
        'Active connections and requests per second at the public endpoint, from nginx stub_status.\n\nMetrics: `nginx_connections_active`, `nginx_http_requests_total`',
        [
          q('sum(nginx_connections_active)', 'active connections'),
          q(`sum(rate(nginx_http_requests_total[${RATE}]))`, 'requests / s'),
        ],
      ),
    ],
  );
}
