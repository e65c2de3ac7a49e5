import { METRICS } from '../../../src/observability/catalogue.js';
import { OBJECTIVES } from '../objectives.js';
import { mean, quantile, sel, sumRate } from '../promql.js';
import { dashboard, labelVariable, q, RATE, row, series } from './common.js';

const SKILL = 'skill=~"$skill"';
const wait = METRICS.queueWait.name;
const phase = METRICS.requestPhase.name;

/** The queue and batching: depth and wait at every hop, where requests spend their time. */
export function queue() {
  return dashboard(
    'skillserve-queue',
    'skillserve / Queue and batching',
    'Depth and wait at every hop (nginx, gateway, BullMQ, dispatcher batcher, skill), batch sizes and where requests spend their time.',
    [
      row('Where requests spend their time'),
      series(
        'Mean time per phase',
        `Mean time an inference request spends in each phase (the Server-Timing phases), stacked; \`total\` is drawn as a line.\n\nMetric: \`${phase}\``,
        [
          q(mean(phase, RATE, 'phase', 'phase!="total"'), '{{phase}}'),
          q(mean(phase, RATE, '', 'phase="total"'), 'total'),
        ],
        { unit: 's', stack: true, span: 24 },
      ),
      row('Depth at every hop'),
      series(
        'Waiting at every hop',
        'Requests or jobs waiting at each hop, from the client side to the model: nginx connections, gateway requests in flight and waiting for their job, queued jobs, jobs in dispatcher batchers, calls inside skill replicas.\n\nMetrics: `nginx_connections_active`, `skillserve_http_requests_in_flight`, `skillserve_gateway_pending_jobs`, `skillserve_queue_jobs`, `skillserve_batch_pending_jobs`, `skillserve_skill_calls_in_flight`',
        [
          q('sum(nginx_connections_active)', 'nginx connections'),
          q(`sum(${METRICS.httpInFlight.name})`, 'gateway in flight'),
          q(`sum(${METRICS.pendingJobs.name})`, 'gateway waiting for jobs'),
          q(`sum(max by (skill, state) (${sel(METRICS.queueJobs.name, 'state=~"waiting|prioritized"')}))`, 'queued'),
          q(`sum(max by (skill, state) (${sel(METRICS.queueJobs.name, 'state="active"')}))`, 'active jobs'),
          q(`sum(${METRICS.batchPending.name})`, 'in batchers'),
          q(`sum(${METRICS.skillInFlight.name})`, 'in skills'),
        ],
        { span: 24 },
      ),
      series(
        'Queue depth by state',
        `Jobs in each skill's queue by state (every dispatcher reports the same queue: max across them).\n\nMetric: \`${METRICS.queueJobs.name}\``,
        [q(`max by (skill, state) (${sel(METRICS.queueJobs.name, SKILL)})`, '{{skill}} {{state}}')],
        { stack: true },
      ),
      series(
        'Oldest waiting job',
        `How long the longest-waiting job at the head of each queue has waited. The dashed line is the ${OBJECTIVES.queueOldestS} s alert threshold.\n\nMetric: \`${METRICS.queueOldestAge.name}\``,
        [q(`max by (skill) (${sel(METRICS.queueOldestAge.name, SKILL)})`, '{{skill}}')],
        { unit: 's', line: OBJECTIVES.queueOldestS },
      ),
      row('Waiting and batching'),
      series(
        'Enqueue to start wait',
        `Time from enqueue until the job's call to the skill started: p50, p95, p99 over every dispatcher.\n\nMetric: \`${wait}\``,
        [
          q(quantile(0.5, wait, RATE, 'skill', SKILL), '{{skill}} p50'),
          q(quantile(0.95, wait, RATE, 'skill', SKILL), '{{skill}} p95'),
          q(quantile(0.99, wait, RATE, 'skill', SKILL), '{{skill}} p99'),
        ],
        { unit: 's' },
      ),
      series('Batch size', `Jobs per InferBatch call: mean and p95.\n\nMetric: \`${METRICS.batchSize.name}\``, [
        q(mean(METRICS.batchSize.name, RATE, 'skill', SKILL), '{{skill}} mean'),
        q(quantile(0.95, METRICS.batchSize.name, RATE, 'skill', SKILL), '{{skill}} p95'),
      ]),
      series(
        'Batch wait and compute',
        `Mean time a job waits in the dispatcher for its batch, and mean model time per batch as the skill reports it.\n\nMetrics: \`${METRICS.batchWait.name}\`, \`${METRICS.batchCompute.name}\``,
        [
          q(mean(METRICS.batchWait.name, RATE, 'skill', SKILL), '{{skill}} batch wait'),
          q(mean(METRICS.batchCompute.name, RATE, 'skill', SKILL), '{{skill}} compute'),
        ],
        { unit: 's' },
      ),
      series(
        'Jobs finished',
        `Jobs dispatchers finished per second by outcome.\n\nMetric: \`${METRICS.jobs.name}\``,
        [q(sumRate(METRICS.jobs.name, RATE, 'skill, outcome', SKILL), '{{skill}} {{outcome}}')],
        { unit: 'ops', stack: true },
      ),
    ],
    [labelVariable('skill', 'Skill', METRICS.skillReplicas.name)],
  );
}
