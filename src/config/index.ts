import { hostname } from 'node:os';
import { z } from 'zod';

const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);
const positiveInt = (fallback: number) => z.coerce.number().int().min(1).default(fallback);
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
const numberMap = (fallback: string) =>
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
        if (!k || !Number.isFinite(n) || n <= 0) {
          ctx.addIssue({ code: 'custom', message: `"${pair}" is not name=positive-number` });
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

/**
 * Every setting of every role, read from the environment once.
 * Only this module reads `process.env`; everything else receives a {@link Config}.
 */
export const configSchema = z.object({
  /** Address every local process binds to. 127.0.0.1 rather than localhost avoids the slow IPv6 fallback. */
  HOST: z.string().min(1).default('127.0.0.1'),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).default('redis://127.0.0.1:6379'),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).default('postgres://postgres@127.0.0.1:5432/postgres'),
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
  /** Name this process reports in logs, metrics and X-Served-By; defaults to host:role:port. */
  INSTANCE_ID: z.string().min(1).optional(),

  // --- public endpoint and gateways
  PUBLIC_PORT: port(8788),
  GATEWAY_PORT: port(8801),
  GATEWAY_BASE_PORT: port(8801),
  GATEWAY_COUNT: positiveInt(2),
  BODY_LIMIT_BYTES: positiveInt(64 * 1024),
  MAX_INPUT_CHARS: positiveInt(10_000),
  /** How long a synchronous infer request waits for its job before answering 504. */
  REQUEST_TIMEOUT_MS: positiveInt(15_000),
  /** How long a gateway trusts its copy of the skill registry. */
  REGISTRY_CACHE_MS: positiveInt(1_000),
  /** Completed and failed jobs are kept this long so a late reader can still fetch the result. */
  JOB_RETENTION_S: positiveInt(300),

  // --- API keys
  /** How long a gateway trusts a key lookup; a revoked key stops working within this time. */
  KEY_CACHE_TTL_MS: positiveInt(2_000),

  // --- rate limits (per key and skill, by tier), enforced in Redis for the whole cluster
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
  /** A Redis round trip slower than this counts as a failure for the breaker. */
  REDIS_TIMEOUT_MS: positiveInt(500),
  REDIS_BREAKER_RESET_MS: positiveInt(2_000),

  // --- dispatchers
  DISPATCHER_COUNT: positiveInt(1),
  DISPATCHER_CONCURRENCY: positiveInt(64),
  /** Deadline of one gRPC call from a dispatcher to a skill. */
  SKILL_CALL_TIMEOUT_MS: positiveInt(10_000),

  // --- dynamic batching (dispatchers). A skill's own `batching` (from its model config) applies
  // unless BATCH_OVERRIDES names the skill; BATCH_MAX_SIZE also caps what a skill declares.
  /** Largest batch a dispatcher sends to a skill; 1 turns batching off (one Infer per job). */
  BATCH_MAX_SIZE: positiveInt(32),
  /** Longest the oldest job of a forming batch waits for more jobs to join; 0 = never waits. */
  BATCH_MAX_DELAY_MS: z.coerce.number().min(0).max(10_000).default(2),
  /** Batches in flight per skill and dispatcher; further jobs form the next batch meanwhile. */
  BATCH_MAX_IN_FLIGHT: positiveInt(2),
  /** Per-skill `skill=maxBatchSize[:maxQueueDelayMs]`, e.g. `onnx=16:5,nlp=1`; wins over the skill's own. */
  BATCH_OVERRIDES: batchOverrides,

  /** Port of the /metrics listener of a dispatcher or skill; 0 picks a free one. */
  METRICS_PORT: port(0),

  // --- skills
  /** Skills the local cluster starts, one process each. */
  SKILLS: list('nlp'),
  /** Skill hosted by a `skill` process. */
  SKILL_NAME: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,39}$/, 'lower-case name, e.g. "nlp"')
    .default('nlp'),
  /** gRPC port of a skill process; 0 picks a free one and the skill registers the address it got. */
  SKILL_PORT: port(0),
  SKILL_HEARTBEAT_MS: positiveInt(1_000),
  /** A skill that missed heartbeats for this long is treated as gone. */
  SKILL_TTL_MS: positiveInt(4_000),

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
        return `${key}: ${issue.message} (got ${JSON.stringify(raw[key])})`;
      }),
    );
  }
  return Object.freeze(parsed.data);
}

/** Name of this process in logs, metrics and headers. */
export function instanceId(config: Config, role: string, port?: number): string {
  return config.INSTANCE_ID ?? `${hostname()}:${role}${port === undefined ? `:${process.pid}` : `:${port}`}`;
}
