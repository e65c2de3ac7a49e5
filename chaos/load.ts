/**
 * A bounded, closed-loop load generator for the chaos suite (and tests): `concurrency` workers
 * send a mix of cache hits, misses and async jobs to one endpoint on 127.0.0.1 until stopped or
 * until `maxMs` passes. It counts every answer by status and keeps each latency; accepted async
 * jobs are remembered so a scenario can check none was lost.
 */
export interface LoadOptions {
  endpoint: string;
  key: string;
  concurrency: number;
  /** Hard bound: the generator stops by itself after this long. */
  maxMs: number;
  /** Shares of the mix (they need not add up to 1); `write` is a memory write (Postgres). */
  mix?: { hit: number; miss: number; job: number; write?: number };
  skill?: string;
  /** Per-request client timeout; a request still unanswered then counts as `timeout`. */
  timeoutMs?: number;
}

export interface LoadResult {
  sent: number;
  /** By status code, or `network` (connection refused/reset) and `timeout`. */
  byStatus: Record<string, number>;
  /** Requests that got neither a 2xx nor a deliberate 429/503 with Retry-After. */
  failed: number;
  /** 429/503 with Retry-After: refused at once, as designed. */
  shed: number;
  latenciesMs: number[];
  /** Async jobs the cluster accepted (202), by id. */
  acceptedJobs: string[];
  /**
   * Requests sent a second time because the connection closed before any answer came (nginx
   * closes idle keep-alive connections when it reloads or a process dies). Safe: inference is
   * idempotent and every job carries an Idempotency-Key, so a retried job never runs twice.
   */
  retried: number;
  /** Served from an expired cache entry (X-Cache: stale) or a degraded rung (X-Degraded). */
  degraded: number;
  durationMs: number;
  /** Every request: when it started (epoch ms), its kind, latency and outcome (as in byStatus). */
  samples: Sample[];
}

export type Kind = 'hit' | 'miss' | 'job' | 'write';

export interface Sample {
  at: number;
  kind: Kind;
  ms: number;
  outcome: string;
  /** A 2xx, or a 429/503 with Retry-After (refused at once by design). */
  ok: boolean;
  shed: boolean;
}

export interface RunningLoad {
  /** Stops the workers, waits for requests in flight, and returns what happened. */
  stop(): Promise<LoadResult>;
  /** Figures so far (while running). */
  snapshot(): LoadResult;
}

const HIT = 'My sister Maria lives in Madrid and loves her new job.';

export function startLoad(opts: LoadOptions): RunningLoad {
  const mix = opts.mix ?? { hit: 0.5, miss: 0.4, job: 0.1 };
  const total = mix.hit + mix.miss + mix.job + (mix.write ?? 0);
  const skill = opts.skill ?? 'nlp';
  const started = performance.now();
  const result: LoadResult = {
    sent: 0,
    byStatus: {},
    failed: 0,
    shed: 0,
    latenciesMs: [],
    acceptedJobs: [],
    degraded: 0,
    retried: 0,
    durationMs: 0,
    samples: [],
  };
  let running = true;
  let seq = 0;
  const headers = { authorization: `Bearer ${opts.key}`, 'content-type': 'application/json' };
  const count = (what: string) => (result.byStatus[what] = (result.byStatus[what] ?? 0) + 1);

  const one = async () => {
    const r = Math.random() * total;
    const kind: Kind =
      r < mix.hit ? 'hit' : r < mix.hit + mix.miss ? 'miss' : r < mix.hit + mix.miss + mix.job ? 'job' : 'write';
    const input = kind === 'hit' ? HIT : `Load ${process.pid} ${seq++}: the weather in Lisbon is lovely today.`;
    const body = JSON.stringify(
      kind === 'job'
        ? { skill, input, task: 'sentiment' }
        : kind === 'write'
          ? { subject: `load-${process.pid}`, verb: 'sent', object: `message ${seq++}` }
          : { input, task: 'sentiment' },
    );
    const url =
      kind === 'job'
        ? `${opts.endpoint}/v1/jobs`
        : kind === 'write'
          ? `${opts.endpoint}/v1/memory/triples`
          : `${opts.endpoint}/v1/skills/${skill}/infer`;
    const jobHeaders: Record<string, string> =
      kind === 'job' || kind === 'write' ? { 'idempotency-key': `load-${process.pid}-${Date.now()}-${seq++}` } : {};
    const at = Date.now();
    const t0 = performance.now();
    const record = (outcome: string, ok: boolean, shed: boolean) =>
      result.samples.push({ at, kind, ms: performance.now() - t0, outcome, ok, shed });
    result.sent++;
    const send = () =>
      fetch(url, {
        method: 'POST',
        headers: { ...headers, ...jobHeaders },
        body,
        signal: AbortSignal.timeout(opts.timeoutMs ?? 20_000),
      });
    try {
      let res: Response | undefined;
      // Up to three attempts: every idle connection the reloading worker held closes at once.
      for (let attempt = 1; !res; attempt++) {
        try {
          res = await send();
        } catch (err) {
          if (attempt >= 3 || !closedBeforeAnswer(err)) throw err;
          result.retried++;
        }
      }
      const text = await res.text();
      result.latenciesMs.push(performance.now() - t0);
      let code = '';
      if (!res.ok) {
        try {
          code = `:${(JSON.parse(text) as { error?: { code?: string } }).error?.code ?? ''}`;
        } catch {
          code = '';
        }
      }
      count(`${res.status}${code}`);
      if (res.headers.get('x-cache') === 'stale' || res.headers.get('x-degraded')) result.degraded++;
      if (res.status === 202) {
        const id = (JSON.parse(text) as { id?: string }).id;
        if (id) result.acceptedJobs.push(id);
      }
      if (res.ok) return record(`${res.status}`, true, false);
      if ((res.status === 429 || res.status === 503) && res.headers.get('retry-after')) {
        result.shed++;
        record(`${res.status}${code}`, false, true);
      } else {
        result.failed++;
        record(`${res.status}${code}`, false, false);
      }
    } catch (err) {
      result.latenciesMs.push(performance.now() - t0);
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      const what = (err as Error).name === 'TimeoutError' ? 'timeout' : `network${cause ? `:${cause}` : ''}`;
      count(what);
      result.failed++;
      record(what, false, false);
    }
  };

  const workers = Array.from({ length: opts.concurrency }, async () => {
    while (running && performance.now() - started < opts.maxMs) await one();
  });
  const done = Promise.all(workers);
  const snapshot = () => ({ ...result, durationMs: performance.now() - started });
  return {
    snapshot,
    async stop() {
      running = false;
      await done;
      return snapshot();
    },
  };
}

/** Waits until each accepted job reaches a final state; returns the ids that did not (lost). */
export async function unfinishedJobs(endpoint: string, key: string, ids: string[], waitMs: number): Promise<string[]> {
  const deadline = Date.now() + waitMs;
  let pending = [...ids];
  while (pending.length > 0 && Date.now() < deadline) {
    const still: string[] = [];
    for (const id of pending) {
      try {
        const res = await fetch(`${endpoint}/v1/jobs/${id}`, {
          headers: { authorization: `Bearer ${key}` },
          signal: AbortSignal.timeout(5_000),
        });
        const body = (await res.json()) as { status?: string };
        if (!(res.ok && (body.status === 'completed' || body.status === 'failed'))) still.push(id);
      } catch {
        still.push(id);
      }
    }
    pending = still;
    if (pending.length > 0) await new Promise((r) => setTimeout(r, 500));
  }
  return pending;
}

/** The connection closed (or was refused) before any answer: undici's socket errors, a reset. */
function closedBeforeAnswer(err: unknown): boolean {
  const code = (err as { cause?: { code?: string } }).cause?.code;
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'ECONNREFUSED' || code === 'EPIPE';
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
