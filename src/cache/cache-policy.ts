import type { Config } from '../config/index.js';
import type { ErrorCode } from '../errors/index.js';
import type { CacheDirectives } from './cache-control.js';
import { cacheKeyHash } from './cache-key.js';

/**
 * The response cache's policy, pure: which requests may be cached and under what name, which
 * identical requests share one computation, how long an answer lives, when an entry answers and
 * when an expired one still may. No I/O: src/gateway/inference.ts applies it.
 */

/** What the policy reads of a request. */
export interface CacheRequest {
  skill: { name: string; model: string; deterministic: boolean };
  item: {
    task: string;
    text?: string;
    tensors?: unknown;
    maxTokens: number;
    temperature?: number;
    modelVersion: string;
  };
  tenantId: string;
  directives: CacheDirectives;
}

/** How a request is cached: its scope and hash (when deterministic), whether it may be stored, its TTL. */
export interface CacheDecision {
  ttlS: number;
  /** Set for a deterministic request: identical ones in flight share one job (`c-<hash>`). */
  coalesceId?: string;
  /** The entry's scope (tenant, or `shared`) and hash, when the answer may be read and stored. */
  entry?: { scope: string; hash: string };
}

export type CachePolicyConfig = Pick<Config, 'CACHE_TTL_S' | 'CACHE_TTLS' | 'CACHE_SHARED_SKILLS'>;

export function cacheDecision(config: CachePolicyConfig, req: CacheRequest): CacheDecision {
  const { skill, item, directives } = req;
  const ttlS = config.CACHE_TTLS[skill.name] ?? config.CACHE_TTL_S;
  // Sampling with a temperature gives a different answer each time: nothing to share.
  if (!skill.deterministic && item.temperature !== 0) return { ttlS };
  const scope = config.CACHE_SHARED_SKILLS.includes(skill.name) ? 'shared' : req.tenantId;
  const hash = cacheKeyHash({
    skill: skill.name,
    model: skill.model,
    task: item.task,
    text: item.text,
    structured: item.tensors,
    parameters: { maxTokens: item.maxTokens, temperature: item.temperature, modelVersion: item.modelVersion },
    scope,
  });
  // Identical deterministic requests share one job, even when the client does not want caching.
  const coalesceId = `c-${hash}`;
  return directives.noStore ? { ttlS, coalesceId } : { ttlS, coalesceId, entry: { scope, hash } };
}

/** Whether an entry answers a request now: not expired, not refused by no-cache, young enough for max-age. */
export function fresh(
  entry: { expiresAt: number; createdAt: number } | undefined,
  directives: CacheDirectives,
  now: number,
): boolean {
  if (!entry || directives.noCache || entry.expiresAt <= now) return false;
  return directives.maxAgeS === undefined || now - entry.createdAt <= directives.maxAgeS * 1000;
}

/** Failures for which an expired answer is better than none. */
const STALE_ON = new Set<ErrorCode>([
  'SKILL_UNAVAILABLE',
  'SKILL_TIMEOUT',
  'DEADLINE_EXCEEDED',
  'QUEUE_UNAVAILABLE',
  'BREAKER_OPEN',
  'OVERLOADED',
]);

/** Whether an expired entry may answer after computing failed with `code`: only if the client set no freshness bound. */
export function mayServeStale(directives: CacheDirectives, code: ErrorCode | undefined): boolean {
  return !directives.noCache && directives.maxAgeS === undefined && code !== undefined && STALE_ON.has(code);
}
