import { hostname } from 'node:os';
import { z } from 'zod';

const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);
const positiveInt = (fallback: number) => z.coerce.number().int().min(1).default(fallback);
const nonNegativeInt = (fallback: number) => z.coerce.number().int().min(0).default(fallback);
const list = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    );

/** `name=number,name=number` → a map; a malformed pair is a config error naming it. */
const numberMap = (fallback: string, min: 'positive' | 'non-negative' = 'positive') =>
  z
    .string()
    .default(fallback)
    .transform((s, ctx) => {
      const out: Record<string, number> = {};
      for (const pair of s
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean)) {
        const [k, v] = pair.split('=');
        const n = Number(v);
        if (
          !k ||
          v === undefined ||
          v.trim() === '' ||
          !Number.isFinite(n) ||
          n < 0 ||
          (min === 'positive' && n === 0)
        ) {
          ctx.addIssue({ code: 'custom', message: `"${pair}" is not name=${min}-number` });
          return z.NEVER;
        }
        out[k.trim()] = n;
      }
      return out;
    });

/**
 * `name=size[:delayMs],…` → per-skill batch overrides, e.g. `onnx=16:5,nlp=1`; a malformed entry
 * is a config error naming it.
 */
const batchOverrides = z
  .string()
  .default('')
  .transform((s, ctx) => {
    const out: Record<string, { maxBatchSize: number; maxQueueDelayMs?: number }> = {};
    for (const entry of s
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)) {
      const match = /^([a-z][a-z0-9-]{0,39})=(\d+)(?::(\d+(?:\.\d+)?))?$/.exec(entry);
      const size = Number(match?.[2]);
      if (!match || size < 1) {
        ctx.addIssue({
          code: 'custom',
          message: `"${entry}" is not skill=maxBatchSize[:maxQueueDelayMs], e.g. onnx=16:5`,
        });
        return z.NEVER;
      }
      out[match[1]!] = { maxBatchSize: size, ...(match[3] !== undefined ? { maxQueueDelayMs: Number(match[3]) } : {}) };
    }
    return out;
  });

/** `host:port,host:port` → seed nodes of a Redis Cluster; empty: one Redis (REDIS_URL). */
const clusterNodes = z
  .string()
  .default('')
  .transform((s, ctx) => {
    const nodes: { host: string; port: number }[] = [];
    for (const entry of s
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)) {
      const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/.exec(entry);
      const port = Number(match?.[2]);
      if (!match || port < 1 || port > 65535) {
        ctx.addIssue({ code: 'custom', message: `"${entry}" is not host:port, e.g. redis-0.redis:6379` });
        return z.NEVER;
      }
      nodes.push({ host: match[1]!.replace(/^\[|\]$/g, ''), port });
    }
    return nodes;
  });

/**
 * Every setting of every role, read from the environment once.
 * Only this module reads `process.env`; everything else receives a {@link Config}.
 */
export const configSchema = z.object({
  /** Address every local process binds to. 127.0.0.1 rather than localhost avoids the slow IPv6 fallback. */
  HOST: z.string().min(1).default('127.0.0.1'),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).default('redis://127.0.0.1:6379'),
  /**
   * What `up` does with a Redis whose persistence (AOF) is off, where a restart would lose every
   * accepted job: `require` refuses to start, `warn` starts anyway and says so loudly.
   */
  REDIS_PERSISTENCE: z.enum(['require', 'warn']).default('require'),
  /**
   * A Redis Cluster instead of one Redis: `host:port` seeds, comma-separated (any few of its
   * masters or replicas; the client learns the rest). REDIS_URL then gives only the scheme
   * (`rediss://` for TLS), user and password, which every node shares; its host is not used.
   */
  REDIS_CLUSTER_NODES: clusterNodes,
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).default('postgres://postgres@127.0.0.1:5432/postgres'),
  /**
   * Passwords kept apart from the URLs, so the URLs can live in a ConfigMap and the passwords in
   * a Secret; {@link loadConfig} puts each into its URL (one given in the URL itself is replaced).
   */
  REDIS_PASSWORD: z.string().min(1).optional(),
  DATABASE_PASSWORD: z.string().min(1).optional(),
  /** Postgres schema holding skillserve's tables; created and migrated at start-up. */
  DATABASE_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lower-case SQL identifier, e.g. "skillserve"')
    .default('skillserve'),
  /** Namespace of every Redis key and queue, so several clusters (or test runs) share one Redis. */
  KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "." or "-" only')
    .default('skillserve'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Name this process reports in logs and metrics; defaults to host:role:port. */
  INSTANCE_ID: z.string().min(1).optional(),
  /**
   * Whether answers carry `X-Served-By`: an opaque name of the gateway (a hash of its instance
   * id, never a host or port), mapped back to the instance on the admin port and in the logs.
   */
  SERVED_BY_HEADER: z.stringbool().default(true),

  // --- public endpoint and gateways
  PUBLIC_PORT: port(8788),
  GATEWAY_PORT: port(8801),
  GATEWAY_BASE_PORT: port(8801),
  GATEWAY_COUNT: positiveInt(2),
  BODY_LIMIT_BYTES: positiveInt(64 * 1024),
  MAX_INPUT_CHARS: positiveInt(10_000),
  /** Default deadline of a synchronous request; past it the answer is 504 DEADLINE_EXCEEDED. */
  REQUEST_TIMEOUT_MS: positiveInt(15_000),
  /** Per-skill default deadlines, e.g. `openai=60000`. */
  DEADLINES_MS: numberMap(''),
  /** Longest deadline a client may ask for (`deadline_ms` or X-Deadline-Ms). */
  MAX_DEADLINE_MS: positiveInt(600_000),
  /** Waiting jobs a skill may have before new requests get 503 OVERLOADED at once. */
  MAX_QUEUE_DEPTH: positiveInt(10_000),
  /** Per-skill queue depth limits, e.g. `onnx=500`. */
  QUEUE_DEPTHS: numberMap(''),
  /** How long async jobs (POST /v1/jobs) and their results are kept after they finish. */
  ASYNC_JOB_RETENTION_S: positiveInt(86_400),
  /** Priorities: head start by tier (ms), and the delay each recent job of a tenant adds. */
  PRIORITY_TIER_DELAYS_MS: numberMap('premium=0,standard=1000,free=5000', 'non-negative').refine(
    (m) => ['free', 'standard', 'premium'].every((t) => t in m),
    'needs free=, standard= and premium=',
  ),
  PRIORITY_BACKLOG_MS: positiveInt(20),
  /** How long a gateway trusts its copy of the skill registry. */
  REGISTRY_CACHE_MS: positiveInt(1_000),
  /** Completed and failed jobs are kept this long so a late reader can still fetch the result. */
  JOB_RETENTION_S: positiveInt(60),

  // --- API keys
  /** How long a gateway trusts a key lookup; a revoked key stops working within this time. */
  KEY_CACHE_TTL_MS: positiveInt(2_000),
  /**
   * Longest a request waits for Postgres to check a key: an unknown key, or a known one whose
   * cached answer is older than KEY_CACHE_TTL_MS. Past it, a known key is served on its last
   * answer and an unknown one gets 503 DATABASE_UNAVAILABLE.
   */
  KEY_LOOKUP_TIMEOUT_MS: positiveInt(500),

  // --- rate limits (per key and skill, by tier), enforced in Redis for the whole cluster
  /**
   * Per key, tokens per minute on the OpenAI-compatible API by tier (prompt + completion), next to
   * RATE_LIMITS: reserved from an estimate before the call, corrected by the usage after.
   */
  TOKEN_LIMITS: numberMap('free=20000,standard=200000,premium=2000000').refine(
    (m) => ['free', 'standard', 'premium'].every((t) => t in m),
    'needs free=, standard= and premium=',
  ),
  RATE_LIMITS: numberMap('free=100,standard=1000,premium=10000').refine(
    (m) => ['free', 'standard', 'premium'].every((t) => t in m),
    'needs free=, standard= and premium=',
  ),
  RATE_LIMIT_WINDOW_S: positiveInt(60),
  /** While Redis is down: `local` buckets sized limit ÷ live gateways, or `closed` (refuse). */
  RATE_LIMIT_FALLBACK: z.enum(['local', 'closed']).default('local'),
  /** nginx's per-client-IP limit in front of everything (requests/s, and the burst allowed above it). */
  NGINX_RATE_PER_IP: positiveInt(1_000),
  NGINX_BURST_PER_IP: positiveInt(2_000),
  /** nginx's limit on connections with a request in progress per client IP (slow uploads included). */
  NGINX_CONN_PER_IP: z.coerce.number().int().min(1).max(65_535).default(256),
  /**
   * `host:port,…` of the gateways nginx balances over, where they are not the local ones `up`
   * starts (containers: `gateway:8801`). Unset: HOST:GATEWAY_BASE_PORT… (GATEWAY_COUNT of them).
   */
  NGINX_UPSTREAMS: list(''),
  /**
   * DNS server nginx asks, again and again, for the addresses of NGINX_UPSTREAMS (Docker:
   * `127.0.0.11`; Kubernetes: the cluster DNS), so it follows gateways that come and go.
   * Needs nginx 1.27.3 or later. Unset: the names are resolved once, when nginx starts.
   */
  NGINX_RESOLVER: z.string().min(1).optional(),

  // --- TLS at the front door (nginx)
  /** `on`: nginx serves HTTPS (HTTP/2, TLS 1.2+) on TLS_PORT, and plain HTTP only on 127.0.0.1. */
  TLS: z.enum(['on', 'off']).default('off'),
  TLS_PORT: port(8443),
  /** PEM certificate (chain) and key; with TLS=on and both unset, `up` makes a self-signed pair under RUN_DIR/tls. */
  TLS_CERT_FILE: z.string().min(1).optional(),
  TLS_KEY_FILE: z.string().min(1).optional(),

  // --- response cache
  CACHE_TTL_S: positiveInt(3_600),
  /** Per-skill TTL overrides, e.g. `nlp=600,onnx=60`. */
  CACHE_TTLS: numberMap(''),
  /** Skills whose answers do not depend on the tenant: one cache entry serves every tenant. */
  CACHE_SHARED_SKILLS: list(''),
  CACHE_L1_MAX_ENTRIES: positiveInt(10_000),
  CACHE_L1_MAX_BYTES: positiveInt(64 * 1024 * 1024),
  /** How long a gateway serves an entry from its own memory before asking Redis again. */
  CACHE_L1_TTL_MS: positiveInt(5_000),
  /** Expired entries are kept this long, to answer STALE when the skill cannot. */
  CACHE_STALE_GRACE_S: positiveInt(3_600),

  /** Refresh-ahead: how long before a predicted request a hot entry is recomputed. */
  CACHE_REFRESH_LEAD_MS: positiveInt(5_000),
  /** Refresh-ahead: most recomputes a gateway starts per second. */
  CACHE_REFRESH_BUDGET_PER_S: positiveInt(50),

  // --- Redis on the hot path
  /**
   * Bound of a hot-path Redis round trip (rate limit and cache read; a registry refresh waits no
   * longer either): slower counts as a failure for the breaker, and the request goes on degraded.
   */
  REDIS_TIMEOUT_MS: positiveInt(250),
  /** Bound of every other Redis command (enqueue, job reads, queue depth, registry, heartbeats). */
  REDIS_COMMAND_TIMEOUT_MS: positiveInt(1_000),
  REDIS_BREAKER_RESET_MS: positiveInt(2_000),
  // --- entity memory (/v1/memory)
  /** Most triples one `POST /v1/memory/triples` may carry; all are written or none. */
  MEMORY_MAX_BATCH: positiveInt(1_000),
  /** Default and largest page of `GET /v1/memory/triples`. */
  MEMORY_MAX_PAGE: positiveInt(100),
  /** JSON body limit of the memory routes: a bulk insert is bigger than an infer request. */
  MEMORY_BODY_LIMIT_BYTES: positiveInt(1024 * 1024),
  /** The skill and task `POST /v1/memory/extract` runs (through the queue) to turn text into triples. */
  MEMORY_EXTRACT_SKILL: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,39}$/, 'lower-case skill name, e.g. "nlp"')
    .default('nlp'),
  MEMORY_EXTRACT_TASK: z.string().min(1).max(64).default('triples'),
  /**
   * Longest a memory write may take, end to end. Postgres's own statement_timeout is set below it,
   * so a slow database aborts (and rolls back) before the gateway gives up, and a write the
   * gateway gave up on before committing is rolled back too: the answer says what was stored.
   */
  MEMORY_WRITE_TIMEOUT_MS: z.coerce.number().int().min(200).default(3_000),
  /** How long an Idempotency-Key of a memory write is remembered (its answer is replayed). */
  IDEMPOTENCY_RETENTION_S: positiveInt(86_400),

  // --- dispatchers
  DISPATCHER_COUNT: positiveInt(1),
  DISPATCHER_CONCURRENCY: positiveInt(64),
  /** Deadline of one gRPC call from a dispatcher to a skill. */
  SKILL_CALL_TIMEOUT_MS: positiveInt(10_000),
  /** A job whose dispatcher stopped renewing its lock for this long is handed to another. */
  WORKER_LOCK_MS: positiveInt(30_000),
  WORKER_STALLED_CHECK_MS: positiveInt(15_000),
  /**
   * An accepted async job whose skill has no live replica waits for one (a restart, Redis coming
   * back) until its deadline; one without a deadline waits this long, then fails SKILL_UNAVAILABLE.
   */
  SKILL_WAIT_MS: positiveInt(30_000),

  // --- dynamic batching (dispatchers). A skill's own `batching` (from its model config) applies
  // unless BATCH_OVERRIDES names the skill; BATCH_MAX_SIZE also caps what a skill declares.
  /** Largest batch a dispatcher sends to a skill; 1 turns batching off (one Infer per job). */
  BATCH_MAX_SIZE: positiveInt(32),
  /** Longest the oldest job of a forming batch waits for more jobs to join; 0 = never waits. */
  BATCH_MAX_DELAY_MS: z.coerce.number().min(0).max(10_000).default(2),
  /**
   * A job that finds its skill's batcher idle (no batch running, nothing pending) goes at once
   * instead of waiting BATCH_MAX_DELAY_MS for company; false: every first job waits the delay.
   */
  BATCH_FLUSH_WHEN_IDLE: z.stringbool().default(true),
  /** Batches in flight per skill and dispatcher; further jobs form the next batch meanwhile. */
  BATCH_MAX_IN_FLIGHT: positiveInt(2),
  /** Per-skill `skill=maxBatchSize[:maxQueueDelayMs]`, e.g. `onnx=16:5,nlp=1`; wins over the skill's own. */
  BATCH_OVERRIDES: batchOverrides,
  /**
   * While a skill's queue is idle (no job waiting, none in flight on this gateway) a gateway calls
   * the skill directly instead of queueing: a lone request skips BullMQ's round trips. Load makes
   * the queue busy, and requests queue (and batch) again. false: every request goes through the queue.
   */
  QUEUE_BYPASS_WHEN_IDLE: z.stringbool().default(true),

  /**
   * Internal admin port of any role (`/metrics`, `/healthz`, detailed `/readyz`); 0 picks a free
   * one, which the process reports to the local supervisor. Never exposed through nginx.
   */
  METRICS_PORT: port(0),

  // --- skills
  /**
   * Skills the local cluster starts, one process each. Unset: `nlp,onnx`, plus `openai` when
   * OPENAI_BASE_URL is set (see {@link loadConfig}).
   */
  SKILLS: list('nlp,onnx'),
  /** Skill hosted by a `skill` process. */
  SKILL_NAME: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,39}$/, 'lower-case name, e.g. "nlp"')
    .default('nlp'),
  /** gRPC port of a skill process; 0 picks a free one and the skill registers the address it got. */
  SKILL_PORT: port(0),
  /**
   * Host other processes reach this skill at, as it announces in the registry (a container's or
   * pod's IP or DNS name). Unset: HOST, or when HOST is a wildcard (0.0.0.0, ::) this machine's
   * first non-internal IPv4 address.
   */
  SKILL_ADVERTISE_HOST: z.string().min(1).optional(),
  SKILL_HEARTBEAT_MS: positiveInt(1_000),
  /** A skill that missed heartbeats for this long is treated as gone. */
  SKILL_TTL_MS: positiveInt(4_000),
  /**
   * Calls a skill replica takes at once, as it announces in the registry; the dispatcher's pool
   * weighs replicas by it, and the openai backend never has more requests open upstream.
   */
  SKILL_MAX_CONCURRENCY: positiveInt(64),
  /** Items a skill replica accepts in one InferBatch, as it announces in the registry. */
  SKILL_MAX_BATCH: positiveInt(32),
  /**
   * gRPC channels (HTTP/2 connections) a dispatcher opens to each skill replica; calls are
   * spread over them. One channel can cap a busy dispatcher's calls/s (bench:channels).
   */
  SKILL_CLIENT_CHANNELS: z.coerce.number().int().min(1).max(64).default(4),
  /**
   * Circuit breaker per skill replica (dispatchers and the gateway's direct path): it opens when
   * at least SKILL_BREAKER_MIN_CALLS calls fell in the rolling SKILL_BREAKER_WINDOW_MS and
   * SKILL_BREAKER_ERROR_PERCENT of them failed or timed out (a refused or dropped connection opens
   * it at once); after SKILL_BREAKER_RESET_MS a gRPC health check, not a client's request, probes
   * the replica, and SERVING closes it.
   */
  SKILL_BREAKER_ERROR_PERCENT: z.coerce.number().int().min(1).max(100).default(50),
  SKILL_BREAKER_MIN_CALLS: positiveInt(5),
  SKILL_BREAKER_WINDOW_MS: positiveInt(10_000),
  SKILL_BREAKER_RESET_MS: positiveInt(5_000),
  /**
   * HTTP/2 keepalive to skill replicas while calls are in flight: a ping unanswered this long
   * drops the connection (and opens the replica's breaker), so the calls on a hung replica
   * (SIGSTOP, a wedged event loop) fail over within about twice this instead of waiting for their
   * deadline. Long enough that a replica busy loading its model (which blocks its event loop for
   * a moment) is not taken for hung.
   */
  SKILL_KEEPALIVE_MS: positiveInt(5_000),

  // --- openai backend: forwards to any OpenAI-compatible server (vLLM, llama.cpp server, Ollama)
  /** The server's OpenAI-compatible root, e.g. http://127.0.0.1:8000/v1 ("/v1" is added when missing). */
  OPENAI_BASE_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** Model to ask for; unset, the upstream must serve exactly one, which is then used. */
  OPENAI_MODEL: z.string().min(1).optional(),
  /** Sent as a bearer token when set; never logged. */
  OPENAI_API_KEY: z.string().min(1).optional(),
  /**
   * Budget of one item upstream, retries included; a gRPC deadline that comes sooner wins.
   * Raise SKILL_CALL_TIMEOUT_MS and REQUEST_TIMEOUT_MS with it for long generations.
   */
  OPENAI_TIMEOUT_MS: positiveInt(30_000),
  /** Retries of an item the upstream answered 429 (or 503 with Retry-After), within the budget. */
  OPENAI_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(3),

  // --- model lifecycle (every skill) and the onnx backend
  /** A model unloads after this long without a call and loads again on the next; 0: never unload. */
  MODEL_IDLE_UNLOAD_MS: nonNegativeInt(300_000),
  /** Health answers NOT_SERVING while less memory than this is free (machine or cgroup); 0: no floor. */
  MIN_FREE_MEMORY_MB: nonNegativeInt(64),
  /** How often a skill re-evaluates its health (model state, free memory) and pushes changes to Watch. */
  SKILL_HEALTH_INTERVAL_MS: positiveInt(1_000),
  /** How often a skill re-reads its model source (new versions, models); 0: only on SIGHUP. */
  MODEL_POLL_MS: nonNegativeInt(5_000),
  /** The onnx skill's model repository: <dir>/<model>/config.json and <dir>/<model>/<version>/model.onnx. */
  MODEL_REPOSITORY: z.string().min(1).default('models'),
  /** Models of the repository the onnx skill hosts; empty: all. The first is the default model. */
  ONNX_MODELS: list(''),
  /** onnxruntime threads inside one operator; 0: its default (one per core). */
  ONNX_INTRA_OP_THREADS: nonNegativeInt(0),

  // --- monitoring (`skillserve up`): Prometheus, Alertmanager and the standard exporters
  /** `off`: `up` starts no Prometheus (nor the exporters it would scrape). */
  PROMETHEUS: z.enum(['on', 'off']).default('on'),
  /** `off`: `up` starts no Alertmanager; Prometheus still evaluates the rules. */
  ALERTMANAGER: z.enum(['on', 'off']).default('on'),
  PROMETHEUS_PORT: port(9090),
  ALERTMANAGER_PORT: port(9093),
  /** nginx's stub_status, on the host address only, for the nginx exporter (never on the public port). */
  NGINX_STATUS_PORT: port(8789),
  NGINX_EXPORTER_PORT: port(9113),
  REDIS_EXPORTER_PORT: port(9121),
  POSTGRES_EXPORTER_PORT: port(9187),

  // --- autoscaling and the health monitor (`skillserve up`; Kubernetes uses its HPA instead)
  /** `off`: the supervisor keeps the counts it was given (and `skillserve scale` sets). */
  AUTOSCALE: z.enum(['on', 'off']).default('on'),
  /** Gateways never fewer or more than these (the autoscaler's bounds; `scale` may go below the floor). */
  GATEWAY_MIN: positiveInt(2),
  GATEWAY_MAX: positiveInt(10),
  /** Replicas of each skill (SKILLS) `up` starts, and the autoscaler's bounds for them. */
  SKILL_REPLICAS: positiveInt(1),
  SKILL_REPLICAS_MIN: positiveInt(1),
  SKILL_REPLICAS_MAX: positiveInt(4),
  /** A role whose average CPU (% of one core per process) stays above this for the up window gets one more. */
  SCALE_UP_CPU_PERCENT: z.coerce.number().gt(0).max(100).default(70),
  SCALE_UP_WINDOW_MS: positiveInt(300_000),
  /** …and one fewer when it stays below this for the down window. */
  SCALE_DOWN_CPU_PERCENT: z.coerce.number().min(0).max(100).default(30),
  SCALE_DOWN_WINDOW_MS: positiveInt(600_000),
  /** No step within this long of the role's previous one. */
  SCALE_COOLDOWN_MS: positiveInt(60_000),
  /** How often the supervisor samples CPU (from /proc) and probes health. */
  SCALE_SAMPLE_MS: positiveInt(5_000),
  /** A gateway whose /healthz (or a skill whose gRPC health) has not answered SERVING for this long is restarted. */
  STUCK_AFTER_MS: positiveInt(30_000),

  // --- process lifecycle
  SHUTDOWN_TIMEOUT_MS: positiveInt(10_000),
  /** Where the local supervisor keeps nginx's prefix, logs and its pid file. */
  RUN_DIR: z.string().min(1).default('.run'),
  NGINX_BIN: z.string().min(1).default('nginx'),
});

export type Config = Readonly<z.infer<typeof configSchema>>;

/** Raised when the environment does not describe a valid configuration. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parses the environment once and returns a frozen, typed configuration.
 * A wrong value throws a {@link ConfigError} naming the variable, what was expected and what was given.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const raw = Object.fromEntries(
    Object.keys(configSchema.shape)
      .filter((key) => env[key] !== undefined && env[key] !== '')
      .map((key) => [key, env[key]]),
  );
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const key = issue.path.join('.');
        return `${key}: ${issue.message} (got ${shown(key, raw[key])})`;
      }),
    );
  }
  const config = parsed.data;
  // Configuring an upstream is asking for the skill that uses it; an explicit SKILLS list wins.
  if (raw.SKILLS === undefined && config.OPENAI_BASE_URL) config.SKILLS = [...config.SKILLS, 'openai'];
  if (config.SKILLS.includes('openai') && !config.OPENAI_BASE_URL) {
    throw new ConfigError([
      'OPENAI_BASE_URL: the openai skill (in SKILLS) needs the URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1',
    ]);
  }
  const problems: string[] = [];
  if (Boolean(config.TLS_CERT_FILE) !== Boolean(config.TLS_KEY_FILE))
    problems.push('TLS_CERT_FILE, TLS_KEY_FILE: give both (a certificate and its key) or neither');
  if (config.TLS === 'on' && config.TLS_PORT === config.PUBLIC_PORT)
    problems.push(
      `TLS_PORT: must differ from PUBLIC_PORT, which keeps plain HTTP on 127.0.0.1 (got ${config.TLS_PORT})`,
    );
  if (config.GATEWAY_MIN > config.GATEWAY_MAX) problems.push('GATEWAY_MIN: must not exceed GATEWAY_MAX');
  if (config.SKILL_REPLICAS_MIN > config.SKILL_REPLICAS_MAX)
    problems.push('SKILL_REPLICAS_MIN: must not exceed SKILL_REPLICAS_MAX');
  if (config.SCALE_DOWN_CPU_PERCENT >= config.SCALE_UP_CPU_PERCENT)
    problems.push('SCALE_DOWN_CPU_PERCENT: must be below SCALE_UP_CPU_PERCENT');
  if (problems.length > 0) throw new ConfigError(problems);
  if (config.REDIS_PASSWORD) config.REDIS_URL = withPassword(config.REDIS_URL, config.REDIS_PASSWORD);
  if (config.DATABASE_PASSWORD) config.DATABASE_URL = withPassword(config.DATABASE_URL, config.DATABASE_PASSWORD);
  return Object.freeze(config);
}

/** A rejected value as an error message may show it: secrets never, URLs without their password. */
function shown(key: string, value: unknown): string {
  if (/PASSWORD|API_KEY/.test(key)) return 'a value, not shown';
  return JSON.stringify(typeof value === 'string' && key.endsWith('_URL') ? redactUrl(value) : value);
}

/** `url` with `password` in it, percent-encoded (a Redis URL without a user gets the default one). */
function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/** `url` with its password, if any, replaced by `***`: for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

/** Name of this process in logs, metrics and headers. */
export function instanceId(config: Config, role: string, port?: number): string {
  return config.INSTANCE_ID ?? `${hostname()}:${role}${port === undefined ? `:${process.pid}` : `:${port}`}`;
}

/** How long a request to `skill` may take when it names no deadline of its own, in ms. */
export function defaultDeadlineMs(config: Config, skill: string): number {
  return config.DEADLINES_MS[skill] ?? config.REQUEST_TIMEOUT_MS;
}
