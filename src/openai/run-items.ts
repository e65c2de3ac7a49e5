import type { IncomingHttpHeaders } from 'node:http';
import type { Principal } from '../auth/key-store.js';
import { parseCacheControl } from '../cache/cache-control.js';
import type { CacheEntry } from '../cache/response-cache.js';
import type { LimitDecision } from '../cache/token-bucket.js';
import { AppError } from '../errors/index.js';
import type { GatewayDeps } from '../gateway/deps.js';
import type { Admission, Answer, CachedAnswer, Inference, Plan } from '../gateway/inference.js';
import { enforceLimit, type HeaderSink } from '../gateway/routes/request.js';
import type { InferJobData } from '../queue/job.js';
import type { RegistrySnapshot, SkillInfo } from '../skills/registry.js';
import { rateLimitHeaders } from './headers.js';

export interface ItemsCall {
  principal: Principal;
  headers: IncomingHttpHeaders;
  requestId: string;
  receivedAt: number;
  deadlineMs?: number;
}

/** Plans, admitted: the request's one rate-limit decision and each item's cache entry. */
export interface AdmittedItems {
  plans: Plan[];
  admissions: Admission[];
  limit: LimitDecision;
}

/**
 * Plans and admits the items of one OpenAI request (an embeddings request with many inputs, or one
 * generation): one rate-limit decision for the request, and one cache read per item, in one Redis
 * round trip for the first item and one more for the rest. Refuses over the limit (429 with the
 * IETF and OpenAI's x-ratelimit-* headers) and answers 503 when the skill has no replica and the
 * cache cannot answer every item.
 */
export async function admitItems(
  deps: GatewayDeps,
  inference: Inference,
  snapshot: RegistrySnapshot,
  info: SkillInfo,
  items: InferJobData['item'][],
  call: ItemsCall,
  res: HeaderSink,
): Promise<AdmittedItems> {
  const directives = parseCacheControl(call.headers['cache-control']);
  const plans = items.map((item) =>
    inference.plan(call.principal, info, item, directives, call.deadlineMs, call.receivedAt),
  );
  const first = await inference.admit(call.principal, plans[0]!);
  const rest = await readEntries(deps, plans.slice(1), first.degraded !== undefined);
  const admissions = [first, ...rest.map((entry) => ({ limit: first.limit, entry, degraded: first.degraded }))];
  enforceLimit(rateLimitHeaders(res, 'requests'), first.limit, deps.config, call.principal.tier);
  const cached = admissions.every((a) => a.entry !== undefined);
  if (!cached && !snapshot.live.some((r) => r.name === info.name)) {
    throw new AppError('SKILL_UNAVAILABLE', `${info.name}: no replica is up`, { skill: info.name }, { retryAfterS: 1 });
  }
  return { plans, admissions, limit: first.limit };
}

/** Every item's answer (from the cache, or computed: all enqueued at once, so they batch together). */
export function answerItems(inference: Inference, admitted: AdmittedItems, requestId: string): Promise<Answer[]> {
  const { plans, admissions } = admitted;
  return Promise.all(
    plans.map((p, i) => inference.answer(p, admissions[i]!, plans.length === 1 ? requestId : `${requestId}-${i}`)),
  );
}

/** The cache entries of `plans` (undefined where none, or where the plan may not read the cache). */
async function readEntries(
  deps: GatewayDeps,
  plans: Plan[],
  degraded: boolean,
): Promise<(CacheEntry<CachedAnswer> | undefined)[]> {
  const readable = (p: Plan) => p.cacheKey !== undefined && !p.directives.noCache;
  const local = plans.map((p) => (readable(p) ? deps.cache.getLocal(p.cacheKey!, { pastL1Ttl: degraded }) : undefined));
  const missing = plans.map((p, i) => (readable(p) && !local[i] ? i : -1)).filter((i) => i >= 0);
  if (missing.length === 0 || degraded || !deps.redis.available())
    return local as (CacheEntry<CachedAnswer> | undefined)[];
  try {
    const readers: ((raw: unknown) => CacheEntry | undefined)[] = [];
    const results = await deps.redis.exec((pipeline) => {
      for (const i of missing) readers.push(deps.cache.add(pipeline, plans[i]!.cacheKey!));
    });
    missing.forEach((i, n) => (local[i] = readers[n]!(results[n])));
  } catch {
    // The cache is an optimisation: an item it cannot read is computed.
  }
  return local as (CacheEntry<CachedAnswer> | undefined)[];
}
