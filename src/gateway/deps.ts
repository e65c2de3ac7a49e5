import type { Registry } from 'prom-client';
import type { Authenticator } from '../auth/authenticator.js';
import type { RateLimiter } from '../cache/rate-limiter.js';
import type { RedisGuard } from '../cache/redis-guard.js';
import type { ResponseCache } from '../cache/response-cache.js';
import type { Config } from '../config/index.js';
import type { EntityStore } from '../memory/entity-store.js';
import type { Logger } from '../observability/logger.js';
import type { ReadinessCheck } from '../observability/readiness.js';
import type { InferItem, SkillAnswer } from '../skills/contract.js';
import type { JobProducer } from '../queue/producer.js';
import type { TokenStreamReader } from '../queue/token-reader.js';
import type { DirectStreams } from './direct-streams.js';
import type { RegistrySnapshot } from '../skills/registry.js';

/** The narrow view of the job queue a gateway needs. */
export type JobRunner = Pick<JobProducer, 'enqueue' | 'submit' | 'getJob' | 'admit' | 'priority' | 'idle' | 'pending'>;

/** Where the gateway learns which skills exist and which are up. */
export interface SkillDirectory {
  get(): Promise<RegistrySnapshot>;
}

/** Calls a skill directly over gRPC, bypassing the queue: the degraded path while Redis is down. */
export type DirectCall = (
  skill: string,
  requestId: string,
  item: InferItem,
  /** Epoch ms by which the call must end: the request's own deadline. */
  deadlineAt: number,
) => Promise<SkillAnswer>;

export type { ReadinessCheck };

export interface GatewayDeps {
  config: Config;
  instance: string;
  logger: Logger;
  metrics: Registry;
  jobs: JobRunner;
  /** Token streams of streamed jobs; without it, a streamed generation arrives as one chunk. */
  tokens?: Pick<TokenStreamReader, 'follow'>;
  /** Streamed generations computed without the queue send their deltas here (direct-streams.ts). */
  directStreams?: Pick<DirectStreams, 'listen'>;
  authenticator: Pick<Authenticator, 'authenticate'>;
  limiter: RateLimiter;
  cache: ResponseCache;
  redis: Pick<RedisGuard, 'available' | 'exec' | 'problem' | 'breakerState' | 'onUnavailable'>;
  /** The Postgres pool's sizes, for metrics. */
  pgPool?: () => { total: number; idle: number; waiting: number; max: number };
  direct: DirectCall;
  skills: SkillDirectory;
  /** Entity memory (triples per tenant). */
  memory: EntityStore;
  readiness: ReadinessCheck[];
  /** True once SIGTERM arrived: /readyz answers 503 so the balancer drains this instance. */
  isShuttingDown?: () => boolean;
}
