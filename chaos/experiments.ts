import {
  type ChaosContext,
  type Check,
  type Experiment,
  failedTotal,
  observe,
  type Outcome,
  outcomesOf,
  settled,
  signal,
  sleep,
  until,
} from './experiment.js';

const check = (what: string, ok: boolean, detail?: string): Check => ({ what, ok, ...(detail ? { detail } : {}) });
const noJobLost = (o: Pick<Outcome, 'jobsAccepted' | 'jobsLost'>) =>
  check('no accepted async job lost', o.jobsLost === 0, `${o.jobsLost} of ${o.jobsAccepted} lost`);
const count = (o: Pick<Outcome, 'phases'>, pattern: RegExp) =>
  Object.entries(outcomesOf(o))
    .filter(([k]) => pattern.test(k))
    .reduce((n, [, v]) => n + v, 0);
/** Breakers of the skill's replicas seen open (or half-open) and seen closed again afterwards. */
const breakerCycled = (o: Pick<Outcome, 'breakerStates'>) =>
  Object.entries(o.breakerStates).filter(([, states]) => states.includes('open') && states.at(-1) === 'closed').length;

export const gatewayKill: Experiment = {
  name: 'gateway-kill',
  title: 'Kill a gateway (SIGKILL) under load',
  hypothesis:
    'nginx sends new requests to the other gateway at once; only requests that were inside the killed process fail (nginx does not resend a POST), and the supervisor restarts it; no accepted job is lost.',
  async run(ctx) {
    const o = await observe(ctx, { ...this, injected: 'SIGKILL gateway-1' }, async () => {
      signal(ctx, 'gateway-1', 'SIGKILL');
      await sleep(ctx.faultMs);
    });
    return {
      ...o,
      checks: [check('the gateway was restarted', (o.restarts['gateway-1'] ?? 0) >= 1), noJobLost(o)],
      notes: [`${failedTotal(o)} requests failed: those in flight inside the killed gateway`],
    };
  },
};

export const gatewayStop: Experiment = {
  name: 'gateway-stop',
  title: 'Stop a gateway gracefully (SIGTERM) under load',
  hypothesis:
    'The gateway finishes what it has in flight and exits; requests arriving meanwhile go to the other gateway (nginx retries a refused connection); no request fails, no job is lost.',
  async run(ctx) {
    const o = await observe(ctx, { ...this, injected: 'SIGTERM gateway-2' }, async () => {
      signal(ctx, 'gateway-2', 'SIGTERM');
      await sleep(500);
      await settled(ctx);
    });
    return { ...o, checks: [check('no request failed', failedTotal(o) === 0), noJobLost(o)], notes: [] };
  },
};

export const skillKill: Experiment = {
  name: 'skill-kill',
  title: 'Kill one of two skill replicas (SIGKILL) under load',
  hypothesis:
    'Calls on the dead replica fail over to the other at once (refused connection: its breaker opens without waiting for a rate); no request fails; the supervisor restarts it and it takes calls again.',
  async run(ctx) {
    const o = await observe(ctx, { ...this, injected: 'SIGKILL skill-nlp-2 (skill-nlp stays)' }, async () => {
      signal(ctx, 'skill-nlp-2', 'SIGKILL');
      await sleep(ctx.faultMs);
    });
    return { ...o, checks: [check('no request failed', failedTotal(o) === 0), noJobLost(o)], notes: [] };
  },
};

export const skillHang: Experiment = {
  name: 'skill-hang',
  title: 'Hang one of two skill replicas (SIGSTOP), then let it go',
  hypothesis:
    'The hung replica stops answering HTTP/2 keepalive pings; its calls are dropped within about twice SKILL_KEEPALIVE_MS and retried on the healthy replica, its breaker opens; no request fails. After SIGCONT a health probe closes the breaker.',
  short: true,
  async run(ctx) {
    const o = await observe(
      ctx,
      { ...this, injected: `SIGSTOP skill-nlp-2 for ${ctx.faultMs / 1000} s, then SIGCONT` },
      async () => {
        signal(ctx, 'skill-nlp-2', 'SIGSTOP');
        try {
          await sleep(ctx.faultMs);
        } finally {
          signal(ctx, 'skill-nlp-2', 'SIGCONT');
        }
      },
      { afterMs: 6_000 },
    );
    return {
      ...o,
      checks: [
        check('no request failed', failedTotal(o) === 0),
        check(
          'a breaker to the hung replica opened, and closed again after it resumed',
          breakerCycled(o) > 0,
          JSON.stringify(o.breakerStates),
        ),
        noJobLost(o),
      ],
      notes: [],
    };
  },
};

export const skillHangAll: Experiment = {
  name: 'skill-hang-all',
  title: 'Hang every replica of the skill (SIGSTOP both)',
  hypothesis:
    'With no healthy replica, the breakers open and requests stop waiting: cache hits still answer, misses get 503 BREAKER_OPEN with Retry-After at once (or a STALE answer where an expired one exists); only the calls caught in flight pay a few seconds; async jobs wait for the skill and finish after SIGCONT.',
  async run(ctx) {
    const o = await observe(
      ctx,
      { ...this, injected: `SIGSTOP skill-nlp and skill-nlp-2 for ${ctx.faultMs / 1000} s` },
      async () => {
        signal(ctx, 'skill-nlp', 'SIGSTOP');
        signal(ctx, 'skill-nlp-2', 'SIGSTOP');
        try {
          await sleep(ctx.faultMs);
        } finally {
          signal(ctx, 'skill-nlp', 'SIGCONT');
          signal(ctx, 'skill-nlp-2', 'SIGCONT');
        }
      },
      { afterMs: 6_000 },
    );
    const timeouts = count(o, /timeout|^504/);
    return {
      ...o,
      checks: [
        check('requests were refused fast with BREAKER_OPEN', count(o, /BREAKER_OPEN/) > 0),
        check('no client-side timeout', count(o, /^timeout/) === 0, `${timeouts} timeouts or 504s`),
        noJobLost(o),
      ],
      notes: [],
    };
  },
};

export const dispatcherKill: Experiment = {
  name: 'dispatcher-kill',
  title: 'Kill a dispatcher mid-batch (SIGKILL)',
  hypothesis:
    'The other dispatcher keeps consuming; the jobs the dead one held are handed over when their locks expire (WORKER_LOCK_MS); no accepted async job is lost; sync requests are answered or fail within their deadline.',
  short: true,
  async run(ctx) {
    const o = await observe(ctx, { ...this, injected: 'SIGKILL dispatcher-1' }, async () => {
      signal(ctx, 'dispatcher-1', 'SIGKILL');
      await sleep(ctx.faultMs);
    });
    return {
      ...o,
      checks: [noJobLost(o), check('no client-side timeout', count(o, /^timeout/) === 0)],
      notes: [],
    };
  },
};

export const redisRestart: Experiment = {
  name: 'redis-restart',
  title: 'Restart Redis (SIGKILL, back on its AOF)',
  hypothesis:
    'While Redis is down, inference is served on the direct path (X-Degraded) and async jobs get 503 QUEUE_UNAVAILABLE with Retry-After; fewer than 1 % of requests fail; every job accepted before the kill is still there after (AOF) and finishes.',
  async run(ctx) {
    const o = await observe(
      ctx,
      { ...this, injected: `Redis killed, restarted ${ctx.faultMs / 1000} s later` },
      async () => {
        await ctx.redis.stop();
        await sleep(ctx.faultMs);
        await ctx.redis.start();
      },
    );
    const total = o.phases.reduce((n, p) => n + p.requests, 0);
    const failed = failedTotal(o);
    return {
      ...o,
      checks: [check('fewer than 1 % of requests failed', failed < total / 100, `${failed} of ${total}`), noJobLost(o)],
      notes: [],
    };
  },
};

export const postgresStop: Experiment = {
  name: 'postgres-stop',
  title: 'Stop Postgres, then start it',
  hypothesis:
    'Inference does not need Postgres for keys already known (key cache): hits, misses and jobs are unaffected; memory writes get 503 DATABASE_UNAVAILABLE with Retry-After and nothing half-written.',
  async run(ctx) {
    const o = await observe(ctx, { ...this, injected: `Postgres stopped ${ctx.faultMs / 1000} s` }, async () => {
      await ctx.pg.stop('immediate');
      await sleep(ctx.faultMs);
      await ctx.pg.start();
    });
    return {
      ...o,
      checks: [
        check('no request failed (memory writes were refused with Retry-After)', failedTotal(o) === 0),
        noJobLost(o),
      ],
      notes: [`memory writes refused: ${count(o, /DATABASE_UNAVAILABLE/)}`],
    };
  },
};

export const overload: Experiment = {
  name: 'overload',
  title: 'Overload: ten times the steady concurrency, misses only',
  hypothesis:
    'Beyond MAX_QUEUE_DEPTH the gateways answer 503 OVERLOADED with Retry-After at once; admitted requests keep a bounded latency; no process crashes; no timeouts.',
  async run(ctx) {
    const o = await observe(
      { ...ctx, concurrency: ctx.concurrency * 10 },
      {
        ...this,
        injected: `${ctx.concurrency * 10} concurrent clients`,
        load: { mix: { hit: 0, miss: 0.9, job: 0.1 } },
      },
      async () => void (await sleep(ctx.faultMs)),
      { beforeMs: 0, afterMs: 0 },
    );
    o.phases = o.phases.filter((p) => p.phase === 'during');
    return {
      ...o,
      checks: [
        check('no process restarted', Object.keys(o.restarts).length === 0, JSON.stringify(o.restarts)),
        check('no client-side timeout or closed connection', count(o, /^(timeout|network)/) === 0),
        noJobLost(o),
      ],
      notes: [],
    };
  },
};

/** The suite, in the order it runs (the shared cluster's roles are back to normal after each). */
export const experiments: Experiment[] = [
  skillHang,
  skillKill,
  skillHangAll,
  dispatcherKill,
  gatewayStop,
  gatewayKill,
  postgresStop,
  redisRestart,
  overload,
];

export type { ChaosContext };
export { until };
