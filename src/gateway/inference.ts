import { randomUUID } from 'node:crypto';
import type { Principal } from '../auth/key-store.js';
import { RefreshPredictor } from '../cache/refresh-ahead.js';
import { cacheDecision, fresh, mayServeStale } from '../cache/cache-policy.js';
import type { CacheDirectives } from '../cache/cache-control.js';
import type { CacheEntry } from '../cache/response-cache.js';
import type { LimitDecision } from '../cache/token-bucket.js';
import { defaultDeadlineMs } from '../config/index.js';
import { AppError } from '../errors/index.js';
import type { InferJobResult } from '../queue/job.js';
import { type InferItem, outputValue, type SkillAnswer } from '../skills/contract.js';
import type { SkillInfo } from '../skills/registry.js';
import type { GatewayDeps } from './deps.js';
import type { GatewayMetrics } from './metrics.js';
import type { PhaseClock } from './phases.js';
import { RefreshAhead } from './refresh-ahead.js';
import { untilRedisFails } from './redis-stall.js';
import { redisOutageError } from '../lib/redis.js';

/** What is kept in the cache for one answer. */
export interface CachedAnswer {
  model: string;
  output: unknown;
}

export type CacheStatus = 'HIT' | 'MISS' | 'STALE' | 'BYPASS';

/** How one request will be served, decided before any I/O. */
export interface Plan {
  principal: Principal;
  skill: SkillInfo;
  /** Epoch ms after which the answer is useless. */
  deadlineAt: number;
  item: InferItem;
  directives: CacheDirectives;
  /** Redis key of the cached answer; undefined when the request may not be cached. */
  cacheKey?: string;
  /** Job id shared by identical in-flight requests (deterministic ones only). */
  coalesceId?: string;
  /** Epoch ms when the request arrived (or a refresh started): coalescing joins only jobs running then. */
  arrivedAt: number;
  ttlS: number;
}

export interface Admission {
  limit: LimitDecision;
  /** The entry found (fresh or not), if the plan allowed reading. */
  entry?: CacheEntry<CachedAnswer>;
  /** Set when Redis could not be used and a fallback decided. */
  degraded?: 'redis';
}

export interface Answer {
  model: string;
  output: unknown;
  cache: CacheStatus;
  ageS?: number;
  job?: SkillAnswer;
  degraded?: 'redis' | 'stale';
}

/**
 * The request path behind the infer route: rate limit and cache lookup in one Redis round trip,
 * then the answer from the cache, the queue, or — while Redis is down — the skill directly.
 */
export function createInference(deps: GatewayDeps, metrics: GatewayMetrics) {
  const { config, cache, limiter, redis } = deps;
  const refresher = new RefreshAhead<Plan & { cacheKey: string }>({
    predictor: new RefreshPredictor({
      leadMs: config.CACHE_REFRESH_LEAD_MS,
      maxRefreshesPerInterval: config.CACHE_REFRESH_BUDGET_PER_S,
      budgetIntervalMs: 1_000,
    }),
    recompute: async (p) =>
      (
        await computeAndStore(
          { ...p, arrivedAt: Date.now(), deadlineAt: deadlineFor(p.skill.name, Date.now()) },
          `refresh-${randomUUID()}`,
        )
      ).expiresAt,
    lock: async (key) => {
      // Held for the lead time only: long enough that another gateway predicting the same access
      // skips it, short enough not to block the next period's refresh.
      const [ok] = await redis.exec((pipeline) =>
        pipeline.set(`${key}:refreshing`, '1', 'PX', config.CACHE_REFRESH_LEAD_MS, 'NX'),
      );
      return ok === 'OK';
    },
    metrics,
    logger: deps.logger,
    recipeTtlMs: 2 * Math.max(config.CACHE_TTL_S, ...Object.values(config.CACHE_TTLS)) * 1000,
  });

  /**
   * Epoch ms by which an answer is needed: the request's own deadline, else the skill's default,
   * counted from when the request reached the cluster. Computed once; it travels as it is (job,
   * gRPC call, skill server).
   */
  function deadlineFor(skill: string, arrivedAt: number, deadlineMs?: number): number {
    return arrivedAt + (deadlineMs ?? defaultDeadlineMs(config, skill));
  }

  function plan(
    principal: Principal,
    skill: SkillInfo,
    item: InferItem,
    directives: CacheDirectives,
    deadlineMs?: number,
    /** When the request reached the cluster (see requestStart). */
    arrivedAt = Date.now(),
  ): Plan {
    const decision = cacheDecision(config, {
      skill: { name: skill.name, model: skill.model, deterministic: skill.deterministic },
      item,
      tenantId: principal.tenantId,
      directives,
    });
    return {
      principal,
      skill,
      item,
      directives,
      ttlS: decision.ttlS,
      deadlineAt: deadlineFor(skill.name, arrivedAt, deadlineMs),
      arrivedAt,
      coalesceId: decision.coalesceId,
      cacheKey: decision.entry && cache.redisKey(decision.entry.scope, decision.entry.hash),
    };
  }

  /** Rate limit, and the cache lookup unless the in-process level already answers: one round trip. */
  async function admit(principal: Principal, p: Plan): Promise<Admission> {
    const now = Date.now();
    const local = p.cacheKey && !p.directives.noCache ? cache.getLocal(p.cacheKey) : undefined;
    const useLocal = fresh(local, p.directives, now);
    if (p.cacheKey && !p.directives.noCache)
      metrics.cacheLookups.inc({ level: 'l1', result: useLocal ? 'hit' : 'miss' });
    const readRedis = p.cacheKey !== undefined && !p.directives.noCache && !useLocal;
    let admission: Admission;
    if (redis.available()) {
      try {
        let readLimit!: (raw: unknown) => LimitDecision;
        let readEntry: ((raw: unknown) => CacheEntry | undefined) | undefined;
        const results = await redis.exec((pipeline) => {
          readLimit = limiter.add(pipeline, principal, p.skill.name);
          if (readRedis) readEntry = cache.add(pipeline, p.cacheKey!);
        });
        metrics.redisRoundTrips.inc({ op: readRedis ? 'limit+cache' : 'limit' });
        const entry = readEntry?.(results[1]) as CacheEntry<CachedAnswer> | undefined;
        if (readRedis)
          metrics.cacheLookups.inc({ level: 'redis', result: fresh(entry, p.directives, now) ? 'hit' : 'miss' });
        admission = { limit: readLimit(results[0]), entry: useLocal ? (local as CacheEntry<CachedAnswer>) : entry };
      } catch (err) {
        if (!(err instanceof AppError) || err.code !== 'QUEUE_UNAVAILABLE') throw err;
        admission = degradedAdmission(principal, p, useLocal ? local : undefined);
      }
    } else {
      admission = degradedAdmission(principal, p, useLocal ? local : undefined);
    }
    if (p.cacheKey && !p.directives.noCache && admission.limit.allowed) {
      const hit = admission.entry && fresh(admission.entry, p.directives, now) ? admission.entry.expiresAt : undefined;
      refresher.access(p as Plan & { cacheKey: string }, now, hit);
    }
    metrics.rateLimit.inc({
      tier: principal.tier,
      outcome: admission.limit.allowed ? 'allowed' : 'limited',
      source: admission.degraded ? 'local' : 'redis',
    });
    return admission;
  }

  function degradedAdmission(principal: Principal, p: Plan, local: CacheEntry | undefined): Admission {
    metrics.degraded.inc({ reason: 'redis' });
    // Without Redis there is nothing newer to read: the in-process copy serves past its L1 TTL.
    const entry =
      local ?? (p.cacheKey && !p.directives.noCache ? cache.getLocal(p.cacheKey, { pastL1Ttl: true }) : undefined);
    return {
      limit: limiter.fallback(principal, p.skill.name),
      entry: entry as CacheEntry<CachedAnswer> | undefined,
      degraded: 'redis',
    };
  }

  /** The answer: from the cache when fresh, else computed (and stored), else stale if allowed. */
  async function answer(p: Plan, admission: Admission, requestId: string, clock?: PhaseClock): Promise<Answer> {
    const now = Date.now();
    const { entry } = admission;
    if (entry && fresh(entry, p.directives, now)) {
      return {
        ...entry.value,
        cache: 'HIT',
        ageS: Math.floor((now - entry.createdAt) / 1000),
        degraded: admission.degraded,
      };
    }
    let job: SkillAnswer;
    try {
      job = await compute(p, requestId, admission.degraded === 'redis', clock);
    } catch (err) {
      const code = err instanceof AppError ? err.code : undefined;
      if (entry && mayServeStale(p.directives, code)) {
        return { ...entry.value, cache: 'STALE', ageS: Math.floor((now - entry.createdAt) / 1000), degraded: 'stale' };
      }
      throw err;
    }
    const value = store(p, job);
    return { ...value, cache: p.cacheKey ? 'MISS' : 'BYPASS', job, degraded: admission.degraded };
  }

  /** Writes a computed answer to both cache levels (when cacheable) and tells the refresher. */
  function store(p: Plan, job: SkillAnswer): CachedAnswer & { expiresAt: number } {
    const value: CachedAnswer = { model: job.model, output: outputValue(job) };
    const entry = cache.entry(value, p.ttlS);
    if (p.cacheKey && redis.available()) {
      redis.exec((pipeline) => cache.set(pipeline, p.cacheKey!, entry)).catch(() => undefined);
      refresher.stored(p.cacheKey, entry.expiresAt, Date.now());
    }
    return { ...value, expiresAt: entry.expiresAt };
  }

  async function computeAndStore(p: Plan, requestId: string) {
    return store(p, await compute(p, requestId, false));
  }

  /** Computations this gateway has in flight, by skill: the queue is idle for it only at 0. */
  const inFlight = new Map<string, number>();
  /** Identical deterministic requests computed directly on this gateway share one call. */
  const directCalls = new Map<string, Promise<SkillAnswer>>();

  /** A skill replica over gRPC, without the queue: while Redis is down, or while the queue is idle. */
  async function callDirect(p: Plan, requestId: string, clock?: PhaseClock): Promise<InferJobResult> {
    const shared = p.coalesceId ? directCalls.get(p.coalesceId) : undefined;
    const call = shared ?? deps.direct(p.skill.name, requestId, p.item, p.deadlineAt);
    if (!shared && p.coalesceId) {
      const id = p.coalesceId;
      directCalls.set(id, call);
      void call.finally(() => directCalls.delete(id)).catch(() => undefined);
    }
    const result = await call;
    clock?.mark('direct');
    // No queue was waited in: the answer's timings say so.
    return { ...result, timing: { ...result.timing, queueMs: 0 } };
  }

  /**
   * Through the queue; while Redis is down, straight to a skill replica over gRPC; and, with
   * QUEUE_BYPASS_WHEN_IDLE, straight to it too while the skill's queue is idle (nothing waiting,
   * nothing of this gateway's in flight): there is no batch to join and no one to go before.
   */
  async function compute(p: Plan, requestId: string, degraded: boolean, clock?: PhaseClock): Promise<InferJobResult> {
    const skill = p.skill.name;
    const degradedCall = () => {
      metrics.degraded.inc({ reason: 'direct' });
      return callDirect(p, requestId, clock);
    };
    if (degraded) return degradedCall();
    // A streamed generation's tokens come over its job's token stream, which only a dispatcher writes.
    const streamed = (p.item as { stream?: boolean }).stream === true;
    // Idle means this request is the only one the gateway is serving (at any stage, not only
    // computing: under load requests in admission would otherwise see an empty compute stage
    // between batches and go unbatched), nothing of the skill is computing, and nothing waits.
    const bypass =
      config.QUEUE_BYPASS_WHEN_IDLE &&
      !streamed &&
      metrics.requestsInFlight.value <= 1 &&
      !inFlight.get(skill) &&
      deps.jobs.idle(skill);
    inFlight.set(skill, (inFlight.get(skill) ?? 0) + 1);
    try {
      if (bypass) {
        try {
          return await callDirect(p, requestId, clock);
        } catch (err) {
          // The bypass is a shortcut, never a worse path: a replica the gateway cannot reach
          // (a channel still connecting after start-up, or backing off) is the queue's to wait
          // for (SKILL_WAIT_MS, the dispatcher's retries).
          if (!(err instanceof AppError && err.code === 'SKILL_UNAVAILABLE')) throw err;
        }
      }
      clock?.mark('enqueue');
      const job = deps.jobs.enqueue({
        skill,
        item: p.item,
        requestId,
        tenant: { id: p.principal.tenantId, tier: p.principal.tier },
        deadlineAt: p.deadlineAt,
        coalesce: p.coalesceId ? { id: p.coalesceId, arrivedAt: p.arrivedAt } : undefined,
      });
      const result = await untilRedisFails(redis, job);
      clock?.set('queue', result.timing.queueMs);
      clock?.set('skill', result.timing.skillMs);
      clock?.set('compute', result.timing.computeMs);
      return result;
    } catch (err) {
      // Redis went away (or hung) between admission and the answer: call the skill directly.
      if (redisOutageError(err)) return degradedCall();
      throw err;
    } finally {
      inFlight.set(skill, inFlight.get(skill)! - 1);
    }
  }

  const countedSkills = new Set<string>();
  /** {@link answer}, counted by what the cache did (X-Cache) for the skill. */
  async function countedAnswer(p: Plan, admission: Admission, requestId: string, clock?: PhaseClock): Promise<Answer> {
    if (!countedSkills.has(p.skill.name)) {
      // Every result of a skill starts at 0, so rates see its first hit.
      countedSkills.add(p.skill.name);
      for (const result of ['hit', 'miss', 'stale', 'bypass'])
        metrics.cacheRequests.inc({ skill: p.skill.name, result }, 0);
    }
    const a = await answer(p, admission, requestId, clock);
    metrics.cacheRequests.inc({ skill: p.skill.name, result: a.cache.toLowerCase() });
    return a;
  }

  return { plan, admit, answer: countedAnswer, refreshDue: (now?: number) => refresher.tick(now) };
}

export type Inference = ReturnType<typeof createInference>;
