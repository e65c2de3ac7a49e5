/**
 * The metric catalogue: every metric skillserve exports, defined once. The roles create their
 * metrics from these specs (src/observability/metrics.ts), docs/METRICS.md is generated from them
 * (`npm run ops:generate`), and the alert rules and dashboards are checked against them.
 *
 * Conventions: `skillserve_<area>_<what>_<unit>`, base units (seconds, bytes), counters end in
 * `_total`, and every label takes values from a bounded set ({@link LABELS}) — never a tenant,
 * key, request id or raw input. A value outside a label's set is collapsed to `other` where the
 * label is set.
 */

export type Role = 'gateway' | 'dispatcher' | 'skill' | 'supervisor';
export type MetricType = 'counter' | 'gauge' | 'histogram';

/** What values a label may take: an enumerated set, or names from a bounded, configured set. */
export interface LabelSpec {
  doc: string;
  /** The only values the label takes. */
  values?: readonly string[];
  /** Otherwise: the most distinct values it can take on one process. */
  bound?: number;
}

/** Values a label collapses to when the input is not one of the known ones. */
export const OTHER = 'other';

export const LABELS = {
  route: {
    doc: "the route's pattern (`/v1/skills/:skill/infer`), `unmatched` for any path no route serves",
    bound: 24,
  },
  method: { doc: 'HTTP method; anything unusual is `other`', values: ['GET', 'POST', 'DELETE', 'HEAD', OTHER] },
  status_class: { doc: 'HTTP status class', values: ['1xx', '2xx', '3xx', '4xx', '5xx'] },
  skill: {
    doc: 'a skill the registry knows (a name a client sends that no skill has never becomes a label)',
    bound: 16,
  },
  model: {
    doc: 'a model the skill serves, or one of its variants (`mlp:int8`), without version; unknown names are `other`',
    bound: 16,
  },
  version: { doc: "a model version the skill's repository holds", bound: 8 },
  tier: { doc: "the API key's tier", values: ['free', 'standard', 'premium'] },
  cache_result: { doc: 'what the cache did for the request (`X-Cache`)', values: ['hit', 'miss', 'stale', 'bypass'] },
  level: { doc: 'cache level', values: ['l1', 'redis'] },
  lookup_result: { doc: 'lookup result', values: ['hit', 'miss'] },
  limit_outcome: { doc: 'rate-limit decision', values: ['allowed', 'limited'] },
  limit_source: {
    doc: 'who decided: the cluster-wide bucket in Redis or the local fallback',
    values: ['redis', 'local'],
  },
  degraded_reason: {
    doc: '`redis`: admitted without Redis; `direct`: computed by calling the skill directly',
    values: ['redis', 'direct'],
  },
  refresh_outcome: { doc: 'refresh-ahead outcome', values: ['refreshed', 'skipped', 'failed'] },
  redis_op: { doc: 'what one request-path round trip carried', values: ['limit', 'limit+cache'] },
  replica: {
    doc: "a skill replica's instance id as it announced it (replicas that left are dropped from the series)",
    bound: 32,
  },
  dependency: { doc: 'what a circuit breaker on the request path guards', values: ['redis'] },
  check: {
    doc: 'a readiness check of the process (`workers`: a dispatcher consumes every skill; `registry`: a skill is announced)',
    values: ['redis', 'postgres', 'skills', 'model', 'workers', 'registry'],
  },
  pool_state: { doc: 'Postgres pool connection state', values: ['idle', 'busy'] },
  queue_state: {
    doc: 'BullMQ job state (`prioritized`: waiting with a priority, which is how every infer job waits)',
    values: ['waiting', 'prioritized', 'active', 'delayed', 'failed'],
  },
  job_outcome: { doc: 'how a job ended', values: ['completed', 'failed', 'expired'] },
  grpc_method: { doc: 'gRPC method of the skill contract', values: ['Infer', 'InferBatch', 'InferStream'] },
  item_outcome: { doc: 'per-item result', values: ['ok', 'error'] },
  model_state: { doc: 'model lifecycle state', values: ['UNLOADED', 'LOADING', 'READY', 'FAILED', 'DRAINING'] },
  phase: {
    doc: 'a phase of the request path, as in the `Server-Timing` header',
    values: ['auth', 'admit', 'enqueue', 'queue', 'skill', 'compute', 'return', 'direct', 'total'],
  },
  scaled_role: { doc: 'a role the supervisor scales', values: ['gateway', 'dispatcher', 'skill'] },
  scale_direction: { doc: 'a scaling step', values: ['up', 'down'] },
  scale_reason: {
    doc: "why: the role's CPU stayed above (`cpu_high`) or below (`cpu_low`) its threshold, or `skillserve scale`",
    values: ['cpu_high', 'cpu_low', 'manual'],
  },
  tenant: {
    doc: 'a tenant of the OpenAI-compatible API; past the first `OPENAI_USAGE_TENANTS` (100) seen by a gateway, `other`',
    bound: 101,
  },
  token_kind: { doc: 'tokens a request sent (prompt) or had generated (completion)', values: ['prompt', 'completion'] },
  version_label: { doc: 'skillserve version (package version and git revision)', bound: 1 },
} as const satisfies Record<string, LabelSpec>;

export type LabelKey = keyof typeof LABELS;

/**
 * Seconds, from a cache hit (~1 ms) to the longest deadline a client may ask for (10 min). The
 * latency objectives are bucket boundaries, so ratios against them are exact: 0.2 s (the brief's
 * p95 target), 0.5 s (the latency alert) and 1 s (the SLO's "fast enough").
 */
export const REQUEST_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600,
] as const;
/** Seconds, from half a millisecond (a batch's wait) to the longest skill call. */
export const CALL_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
] as const;
/** Seconds a job waits in the queue; up to the longest deadline. */
export const WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600] as const;
export const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256] as const;

export interface MetricSpec {
  name: string;
  type: MetricType;
  help: string;
  /** Exported label name → what values it takes (a key of {@link LABELS}). */
  labels: Readonly<Record<string, LabelKey>>;
  roles: readonly Role[];
  buckets?: readonly number[];
  /** Defined here but not exported yet: the issue whose code will export it. */
  pending?: string;
}

const m = <const S extends MetricSpec>(spec: S): S => spec;

export const METRICS = {
  // --- every role
  buildInfo: m({
    name: 'skillserve_build_info',
    type: 'gauge',
    help: 'Always 1; the version label says which build runs',
    labels: { version: 'version_label' },
    roles: ['gateway', 'dispatcher', 'skill'],
  }),
  readinessState: m({
    name: 'skillserve_readiness_state',
    type: 'gauge',
    help: "The process's readiness at scrape time: 2 ready, 1 degraded (serves without an optional dependency), 0 not ready",
    labels: {},
    roles: ['gateway', 'dispatcher', 'skill'],
  }),
  readinessCheck: m({
    name: 'skillserve_readiness_check_ok',
    type: 'gauge',
    help: '1 when the readiness check of this dependency passed at scrape time, 0 when it failed',
    labels: { check: 'check' },
    roles: ['gateway', 'dispatcher', 'skill'],
  }),

  // --- gateway: HTTP
  httpRequestDuration: m({
    name: 'skillserve_http_request_duration_seconds',
    type: 'histogram',
    help: 'Time from the request reaching the gateway to its answer being sent, by route, method and status class',
    labels: { route: 'route', method: 'method', status_class: 'status_class' },
    roles: ['gateway'],
    buckets: REQUEST_BUCKETS,
  }),
  httpInFlight: m({
    name: 'skillserve_http_requests_in_flight',
    type: 'gauge',
    help: 'HTTP requests the gateway is serving now',
    labels: {},
    roles: ['gateway'],
  }),
  requestPhase: m({
    name: 'skillserve_request_phase_seconds',
    type: 'histogram',
    help: 'Time an inference request spent in each phase of the request path (the Server-Timing phases)',
    labels: { phase: 'phase' },
    roles: ['gateway'],
    buckets: REQUEST_BUCKETS,
  }),
  pendingJobs: m({
    name: 'skillserve_gateway_pending_jobs',
    type: 'gauge',
    help: 'Synchronous requests on this gateway waiting for their job to finish',
    labels: {},
    roles: ['gateway'],
  }),

  // --- gateway: cache and limits
  openAiTokens: m({
    name: 'skillserve_openai_tokens_total',
    type: 'counter',
    help: 'Tokens used on the OpenAI-compatible API (embeddings and generations), by tenant, model and kind; from the upstream usage, or the embedding tokenizer',
    labels: { tenant: 'tenant', model: 'model', kind: 'token_kind' },
    roles: ['gateway'],
  }),
  cacheRequests: m({
    name: 'skillserve_cache_requests_total',
    type: 'counter',
    help: 'Inference answers by what the cache did (X-Cache): hit, miss (computed and stored), stale (expired entry served because the skill could not answer), bypass (not cacheable)',
    labels: { skill: 'skill', result: 'cache_result' },
    roles: ['gateway'],
  }),
  cacheLookups: m({
    name: 'skillserve_cache_lookups_total',
    type: 'counter',
    help: 'Response cache lookups by level (l1 in-process, redis) and result',
    labels: { level: 'level', result: 'lookup_result' },
    roles: ['gateway'],
  }),
  cacheRefreshes: m({
    name: 'skillserve_cache_refreshes_total',
    type: 'counter',
    help: 'Cache entries recomputed ahead of expiry (refresh-ahead), by outcome',
    labels: { outcome: 'refresh_outcome' },
    roles: ['gateway'],
  }),
  cacheEntries: m({
    name: 'skillserve_cache_entries',
    type: 'gauge',
    help: 'Entries in the in-process (l1) response cache',
    labels: { level: 'level' },
    roles: ['gateway'],
  }),
  cacheBytes: m({
    name: 'skillserve_cache_size_bytes',
    type: 'gauge',
    help: 'Approximate bytes held by the in-process (l1) response cache',
    labels: { level: 'level' },
    roles: ['gateway'],
  }),
  rateLimitDecisions: m({
    name: 'skillserve_rate_limit_decisions_total',
    type: 'counter',
    help: 'Rate-limit decisions by tier, outcome (allowed, limited) and source (redis, or the local fallback while Redis is out)',
    labels: { tier: 'tier', outcome: 'limit_outcome', source: 'limit_source' },
    roles: ['gateway'],
  }),

  // --- gateway: dependencies
  breakerState: m({
    name: 'skillserve_breaker_state',
    type: 'gauge',
    help: 'Circuit breaker state per dependency: 0 closed, 1 open, 2 half-open',
    labels: { dependency: 'dependency' },
    roles: ['gateway'],
  }),
  skillBreakerState: m({
    name: 'skillserve_skill_breaker_state',
    type: 'gauge',
    help: 'Circuit breaker state of the calls to each skill replica (dispatchers; gateways on their direct path while Redis is down): 0 closed, 1 open, 2 half-open',
    labels: { skill: 'skill', replica: 'replica' },
    roles: ['dispatcher', 'gateway'],
  }),
  degradedRequests: m({
    name: 'skillserve_degraded_requests_total',
    type: 'counter',
    help: 'Requests served in a degraded mode, by reason (redis: admitted without Redis; direct: skill called directly)',
    labels: { reason: 'degraded_reason' },
    roles: ['gateway'],
  }),
  redisRoundTrips: m({
    name: 'skillserve_redis_round_trips_total',
    type: 'counter',
    help: 'Redis round trips on the request path, by what they carried',
    labels: { op: 'redis_op' },
    roles: ['gateway'],
  }),
  pgPoolConnections: m({
    name: 'skillserve_pg_pool_connections',
    type: 'gauge',
    help: "Connections in the gateway's Postgres pool, by state",
    labels: { state: 'pool_state' },
    roles: ['gateway'],
  }),
  pgPoolWaiting: m({
    name: 'skillserve_pg_pool_waiting_requests',
    type: 'gauge',
    help: 'Queries waiting for a Postgres connection (the pool is exhausted while this is above 0)',
    labels: {},
    roles: ['gateway'],
  }),
  pgPoolMax: m({
    name: 'skillserve_pg_pool_max_connections',
    type: 'gauge',
    help: "The pool's connection limit",
    labels: {},
    roles: ['gateway'],
  }),

  // --- dispatcher: queue and batching
  queueJobs: m({
    name: 'skillserve_queue_jobs',
    type: 'gauge',
    help: "Jobs in a skill's BullMQ queue by state, read at scrape time (every dispatcher reports the same queue: aggregate with max by (skill, state))",
    labels: { skill: 'skill', state: 'queue_state' },
    roles: ['dispatcher'],
  }),
  queueOldestAge: m({
    name: 'skillserve_queue_oldest_job_age_seconds',
    type: 'gauge',
    help: 'How long the longest-waiting of the next jobs to run (the head of the queue) has waited; 0 when none waits',
    labels: { skill: 'skill' },
    roles: ['dispatcher'],
  }),
  queueWait: m({
    name: 'skillserve_queue_wait_seconds',
    type: 'histogram',
    help: 'Time from enqueue until the job was sent to the skill (with batching: its batch was)',
    labels: { skill: 'skill' },
    roles: ['dispatcher'],
    buckets: WAIT_BUCKETS,
  }),
  jobs: m({
    name: 'skillserve_dispatcher_jobs_total',
    type: 'counter',
    help: 'Jobs finished by this dispatcher, by skill and outcome',
    labels: { skill: 'skill', outcome: 'job_outcome' },
    roles: ['dispatcher'],
  }),
  batchSize: m({
    name: 'skillserve_batch_size_jobs',
    type: 'histogram',
    help: 'Jobs in each InferBatch call',
    labels: { skill: 'skill' },
    roles: ['dispatcher'],
    buckets: BATCH_BUCKETS,
  }),
  batchWait: m({
    name: 'skillserve_batch_wait_seconds',
    type: 'histogram',
    help: 'Time a job spent in the dispatcher waiting for its batch to be sent',
    labels: { skill: 'skill' },
    roles: ['dispatcher'],
    buckets: CALL_BUCKETS,
  }),
  batchCompute: m({
    name: 'skillserve_batch_compute_seconds',
    type: 'histogram',
    help: "Model time of each InferBatch call, as the skill's timing reported it",
    labels: { skill: 'skill' },
    roles: ['dispatcher'],
    buckets: CALL_BUCKETS,
  }),
  batchPending: m({
    name: 'skillserve_batch_pending_jobs',
    type: 'gauge',
    help: 'Jobs this dispatcher holds waiting for their batch to be sent',
    labels: { skill: 'skill' },
    roles: ['dispatcher'],
  }),
  dispatchCall: m({
    name: 'skillserve_dispatch_call_duration_seconds',
    type: 'histogram',
    help: 'gRPC round trip from the dispatcher to a skill replica',
    labels: { skill: 'skill' },
    roles: ['dispatcher'],
    buckets: CALL_BUCKETS,
  }),
  skillReplicas: m({
    name: 'skillserve_skill_replicas_registered',
    type: 'gauge',
    help: 'Replicas of each skill the registry lists as live (heartbeat current); 0 for a known skill with none',
    labels: { skill: 'skill' },
    roles: ['dispatcher'],
  }),

  // --- supervisor (`skillserve up`): scaling. Its registry has no `role` default label: `role` is the scaled role.
  replicas: m({
    name: 'skillserve_replicas',
    type: 'gauge',
    help: 'Processes the supervisor runs per role (and skill, empty for other roles)',
    labels: { role: 'scaled_role', skill: 'skill' },
    roles: ['supervisor'],
  }),
  scalingDecisions: m({
    name: 'skillserve_scaling_decisions_total',
    type: 'counter',
    help: 'Replicas the supervisor added (up) or removed (down), by role, skill and reason (cpu_high, cpu_low, manual)',
    labels: { role: 'scaled_role', skill: 'skill', direction: 'scale_direction', reason: 'scale_reason' },
    roles: ['supervisor'],
  }),

  // --- skill
  skillCall: m({
    name: 'skillserve_skill_call_duration_seconds',
    type: 'histogram',
    help: 'Time a skill replica spent on one gRPC call, by model and method',
    labels: { skill: 'skill', model: 'model', method: 'grpc_method' },
    roles: ['skill'],
    buckets: CALL_BUCKETS,
  }),
  skillItems: m({
    name: 'skillserve_skill_items_total',
    type: 'counter',
    help: 'Items a skill replica computed, by model and outcome',
    labels: { skill: 'skill', model: 'model', outcome: 'item_outcome' },
    roles: ['skill'],
  }),
  skillInFlight: m({
    name: 'skillserve_skill_calls_in_flight',
    type: 'gauge',
    help: 'gRPC calls a skill replica is working on now',
    labels: { skill: 'skill' },
    roles: ['skill'],
  }),
  skillServing: m({
    name: 'skillserve_skill_serving',
    type: 'gauge',
    help: "The replica's gRPC health: 1 SERVING, 0 NOT_SERVING",
    labels: { skill: 'skill' },
    roles: ['skill'],
  }),
  modelState: m({
    name: 'skillserve_model_state',
    type: 'gauge',
    help: 'One series per model version and state, 1 for the state it is in (a state set)',
    labels: { skill: 'skill', model: 'model', version: 'version', state: 'model_state' },
    roles: ['skill'],
  }),
} as const satisfies Record<string, MetricSpec>;

export type MetricKey = keyof typeof METRICS;

/** Series families prom-client's default collectors add to every role (process CPU, memory, event loop). */
export const DEFAULT_METRIC_PREFIXES = ['process_', 'nodejs_'] as const;

/** Most series one process of each role may export (a test holds the roles to it under random input). */
export const SERIES_BUDGET: Record<Role, number> = { gateway: 1_500, dispatcher: 800, skill: 500, supervisor: 200 };

/** The exported series names of a catalogue metric (histograms: _bucket, _sum, _count). */
export function seriesNames(spec: Pick<MetricSpec, 'name' | 'type'>): string[] {
  return spec.type === 'histogram' ? [`${spec.name}_bucket`, `${spec.name}_sum`, `${spec.name}_count`] : [spec.name];
}

/** The catalogue entry a series name belongs to, if any. */
export function specOf(series: string): MetricSpec | undefined {
  return Object.values(METRICS).find((s: MetricSpec) => seriesNames(s).includes(series));
}
