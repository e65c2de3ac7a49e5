import { median } from './lib/stats.js';

/** The infer request of the benchmark; bench/post.lua sends the same body (run.ts checks it does). */
export const INFER_BODY = '{"input":"My sister Maria lives in Madrid and loves her new job.","task":"sentiment"}';

/** Medians, in ms, of the timings an infer answer carries, and of the round trip the client saw. */
export interface Breakdown {
  samples: number;
  /**
   * Gateway handler minus gRPC round trip, per request: everything Redis and BullMQ add
   * (enqueue, pick-up, completion, the pub/sub message back), at performance.now() precision.
   */
  queueingMs: number;
  /** The dispatcher's gRPC round trip to the skill. */
  skillMs: number;
  /** Model time inside the skill. */
  computeMs: number;
  /** The gateway's infer handler, from body parsed to answer ready. */
  gatewayMs: number;
  /** Through nginx, as this process saw it. */
  clientMs: number;
  /** Client round trip minus gateway handler, per request: nginx, the gateway's Express stack, the client. */
  outsideMs: number;
}

/**
 * Sends one infer request and checks how the gateway's cache answered it (X-Cache), so a
 * measurement cannot silently time cache hits as the infer path or the other way round.
 */
export async function expectCache(
  url: string,
  headers: Record<string, string>,
  expected: 'MISS' | 'HIT',
): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: INFER_BODY,
  });
  const body = await res.text();
  if (!res.ok) throw new Error(`infer answered ${res.status}: ${body.slice(0, 300)}`);
  const got = res.headers.get('x-cache');
  if (got !== expected)
    throw new Error(`infer answered X-Cache: ${got ?? '(none)'} where the bench expects ${expected}`);
}

interface InferAnswer {
  // Its queueMs is left out: both of its ends are Date.now(), too coarse at this scale.
  timings?: { skillMs?: number; computeMs?: number; totalMs?: number };
}

/**
 * Sends `samples` infer requests one after another on an idle cluster and takes the median of
 * each timing, to show where one request's time goes (wrk only sees the total).
 */
export async function sampleBreakdown(url: string, headers: Record<string, string>, samples = 50): Promise<Breakdown> {
  const rows: Omit<Breakdown, 'samples'>[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    const res = await fetch(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: INFER_BODY,
    });
    const answer = (await res.json()) as InferAnswer;
    const clientMs = performance.now() - t0;
    const t = answer.timings;
    if (!res.ok || !t) throw new Error(`infer answered ${res.status}: ${JSON.stringify(answer).slice(0, 300)}`);
    rows.push({
      queueingMs: (t.totalMs ?? NaN) - (t.skillMs ?? NaN),
      skillMs: t.skillMs ?? NaN,
      computeMs: t.computeMs ?? NaN,
      gatewayMs: t.totalMs ?? NaN,
      clientMs,
      outsideMs: clientMs - (t.totalMs ?? NaN),
    });
  }
  const mid = (key: keyof Omit<Breakdown, 'samples'>) => median(rows.map((r) => r[key]));
  return {
    samples,
    queueingMs: mid('queueingMs'),
    skillMs: mid('skillMs'),
    computeMs: mid('computeMs'),
    gatewayMs: mid('gatewayMs'),
    clientMs: mid('clientMs'),
    outsideMs: mid('outsideMs'),
  };
}
