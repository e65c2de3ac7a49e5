import type { Principal, Tier } from '../auth/key-store.js';
import { decision, type LimitDecision } from '../cache/token-bucket.js';
import { AppError } from '../errors/index.js';
import type { GatewayDeps } from '../gateway/deps.js';
import type { HeaderSink } from '../gateway/routes/request.js';
import { METRICS } from '../observability/catalogue.js';
import { counter } from '../observability/metrics.js';
import { rateLimitHeaders } from './headers.js';

/** Tokens a generation is assumed to produce when the request sets no max_tokens. */
const DEFAULT_COMPLETION_TOKENS = 256;
/** Distinct tenants a gateway names in the usage metric; the rest count as `other`. */
const USAGE_TENANTS = 100;

/** A rough count before the model has counted: about four characters a token in English. */
export function estimateTokens(text: string, maxTokens?: number): number {
  return Math.ceil(text.length / 4) + (maxTokens === undefined ? 0 : maxTokens || DEFAULT_COMPLETION_TOKENS);
}

/**
 * Per key, tokens per minute on the OpenAI-compatible API, cluster-wide: the same token-bucket
 * script as the request limiter (one Redis round trip, Redis's clock), with a cost. A request
 * reserves its estimate before it runs and `settle` corrects the bucket by the difference once
 * the usage is known (a refund when the estimate was high). While Redis is unavailable the
 * token limit is not enforced: the request limit's local fallback still bounds a key.
 */
export function createTokenLimiter(deps: Pick<GatewayDeps, 'config' | 'redis' | 'metrics'>) {
  const { config, redis } = deps;
  const used = counter(deps.metrics, METRICS.openAiTokens);
  const tenants = new Set<string>();

  const limitFor = (tier: Tier) => config.TOKEN_LIMITS[tier] ?? config.TOKEN_LIMITS.free!;
  const key = (p: Principal) => `${config.KEY_PREFIX}:{tpm:${p.keyId}}`;

  async function take(p: Principal, cost: number): Promise<LimitDecision | undefined> {
    if (!redis.available()) return undefined;
    const limit = limitFor(p.tier);
    try {
      const [raw] = await redis.exec((pipeline) => {
        pipeline.skillserveTokenBucket(key(p), limit, limit / 60, cost);
      });
      const [allowed, remaining, retryMs, fullMs] = raw as number[];
      return decision(allowed === 1, limit, remaining ?? 0, retryMs ?? 0, fullMs ?? 0);
    } catch {
      return undefined;
    }
  }

  return {
    /** Reserves `estimate` tokens or refuses: 429 TOKENS_RATE_LIMITED with Retry-After and x-ratelimit-*-tokens. */
    async reserve(p: Principal, estimate: number, res: HeaderSink): Promise<void> {
      const d = await take(p, Math.min(estimate, limitFor(p.tier)));
      if (!d) return;
      const sink = rateLimitHeaders(res, 'tokens');
      sink.setHeader('RateLimit-Limit', String(d.limit));
      sink.setHeader('RateLimit-Remaining', String(d.remaining));
      sink.setHeader('RateLimit-Reset', String(d.resetS));
      if (!d.allowed) {
        throw new AppError(
          'TOKENS_RATE_LIMITED',
          `rate limit of ${d.limit} tokens per minute for this key`,
          { limit: d.limit, tier: p.tier },
          { retryAfterS: d.retryAfterS },
        );
      }
    },
    /** Corrects the reservation by the tokens actually used, and counts them for the tenant and model. */
    settle(p: Principal, model: string, estimate: number, usage: { prompt: number; completion: number }): void {
      const actual = usage.prompt + usage.completion;
      const reserved = Math.min(estimate, limitFor(p.tier));
      if (actual !== reserved) void take(p, actual - reserved);
      if (tenants.size < USAGE_TENANTS) tenants.add(p.tenant);
      const tenant = tenants.has(p.tenant) ? p.tenant : 'other';
      used.inc({ tenant, model, kind: 'prompt' }, usage.prompt);
      if (usage.completion > 0) used.inc({ tenant, model, kind: 'completion' }, usage.completion);
    },
  };
}

export type TokenLimiter = ReturnType<typeof createTokenLimiter>;
