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

/**
 * Every setting of every role, read from the environment once.
 * Only this module reads `process.env`; everything else receives a {@link Config}.
 */
export const configSchema = z.object({
  /** Address every local process binds to. 127.0.0.1 rather than localhost avoids the slow IPv6 fallback. */
  HOST: z.string().min(1).default('127.0.0.1'),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).default('redis://127.0.0.1:6379'),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).default('postgres://postgres@127.0.0.1:5432/postgres'),
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

  // --- dispatchers
  DISPATCHER_COUNT: positiveInt(1),
  DISPATCHER_CONCURRENCY: positiveInt(64),
  /** Deadline of one gRPC call from a dispatcher to a skill. */
  SKILL_CALL_TIMEOUT_MS: positiveInt(10_000),
  /** Port of the /metrics listener of a dispatcher or skill; 0 picks a free one. */
  METRICS_PORT: port(0),

  // --- skills
  /** Skills the local cluster starts, one process each. */
  SKILLS: list('nlp,onnx'),
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
