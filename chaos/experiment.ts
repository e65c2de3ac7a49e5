import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { BenchCluster } from '../bench/cluster.js';
import { askSupervisor } from '../src/cluster/control.js';
import type { ClusterStatus } from '../src/cluster/status.js';
import type { PostgresInstance } from '../test/helpers/postgres-instance.js';
import type { OwnRedis } from '../test/helpers/redis-server.js';
import { type LoadOptions, startLoad, unfinishedJobs } from './load.js';
import { type PhaseStats, phaseStats, recoveryMs } from './measure.js';

/** What an experiment may touch: the cluster and its private Redis and Postgres. */
export interface ChaosContext {
  cluster: BenchCluster;
  redis: OwnRedis;
  pg: PostgresInstance;
  key: string;
  /** How long a timed fault lasts (a hang, an outage), ms. */
  faultMs: number;
  /** Client concurrency of the steady load. */
  concurrency: number;
  print: (line: string) => void;
}

export interface Check {
  what: string;
  ok: boolean;
  detail?: string;
}

export interface Outcome {
  name: string;
  title: string;
  hypothesis: string;
  injected: string;
  phases: PhaseStats[];
  recoveryMs: number;
  jobsAccepted: number;
  /** Accepted async jobs that never reached a final state (lost). */
  jobsLost: number;
  /** Breaker states seen on the cluster's processes during the experiment, by `process labels`. */
  breakerStates: Record<string, string[]>;
  restarts: Record<string, number>;
  /** The longest event-loop stall of the process running the load (and the supervisor), ms. */
  runnerMaxLagMs?: number;
  checks: Check[];
  notes: string[];
}

export interface Experiment {
  name: string;
  title: string;
  hypothesis: string;
  /** Runs in the short profile (`npm test`). */
  short?: boolean;
  run(ctx: ChaosContext): Promise<Outcome>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function proc(ctx: ChaosContext, name: string) {
  const p = ctx.cluster.processes.find((x) => x.spec.name === name);
  if (!p) throw new Error(`no process ${name}`);
  return p;
}

/** Sends `sig` to the named process; SIGCONT to one that is gone (restarted meanwhile) is a no-op. */
export function signal(ctx: ChaosContext, name: string, sig: NodeJS.Signals): void {
  const pid = proc(ctx, name).pid;
  if (!pid) {
    if (sig === 'SIGCONT') return;
    throw new Error(`${name} is not running`);
  }
  try {
    process.kill(pid, sig);
  } catch (err) {
    if (sig !== 'SIGCONT') throw err;
  }
}

export function status(ctx: ChaosContext): Promise<ClusterStatus> {
  return askSupervisor(ctx.cluster.config.RUN_DIR, { cmd: 'status' }, 10_000) as Promise<ClusterStatus>;
}

/** Waits until `cond` holds (polling), or throws after `timeoutMs`. */
export async function until(cond: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** Every Node process of the cluster is running and reports an admin port. */
export async function settled(ctx: ChaosContext, timeoutMs = 60_000): Promise<void> {
  await until(
    () => ctx.cluster.processes.every((p) => p.pid !== undefined && (p.spec.name === 'nginx' || p.adminPort)),
    timeoutMs,
    'every process to run',
  );
}

/**
 * The frame of every experiment: steady load, a quiet `beforeMs`, the fault (`inject` resolves
 * when it is cleared), `afterMs` of recovery; then every accepted async job is followed to a final
 * state. Breaker transitions are read from the processes' logs.
 */
export async function observe(
  ctx: ChaosContext,
  spec: { name: string; title: string; hypothesis: string; injected: string; load?: Partial<LoadOptions> },
  inject: () => Promise<void>,
  opts: { beforeMs?: number; afterMs?: number } = {},
): Promise<Omit<Outcome, 'checks' | 'notes'>> {
  const beforeMs = opts.beforeMs ?? 2_000;
  const afterMs = opts.afterMs ?? 4_000;
  const restartsBefore = new Map(ctx.cluster.processes.map((p) => [p.spec.name, p.restarts]));
  const load = startLoad({
    endpoint: ctx.cluster.endpoint,
    key: ctx.key,
    concurrency: ctx.concurrency,
    maxMs: beforeMs + ctx.faultMs * 4 + afterMs + 60_000,
    timeoutMs: 30_000,
    mix: { hit: 0.4, miss: 0.4, job: 0.15, write: 0.05 },
    ...spec.load,
  });
  // The supervisor runs in this process too: its stalls would show as the cluster's.
  const lag = monitorEventLoopDelay({ resolution: 20 });
  lag.enable();
  const start = Date.now();
  await sleep(beforeMs);
  const faultAt = Date.now();
  let failure: unknown;
  await inject().catch((err: unknown) => (failure = err ?? new Error('the injection failed')));
  const clearedAt = Date.now();
  if (!failure) await sleep(afterMs);
  const end = Date.now();
  const result = await load.stop();
  lag.disable();
  if (failure) throw failure;
  const lost = await unfinishedJobs(ctx.cluster.endpoint, ctx.key, result.acceptedJobs, 60_000);
  const breakerStates = breakerTransitions(ctx, start);
  const restarts: Record<string, number> = {};
  for (const p of ctx.cluster.processes) {
    const n = p.restarts - (restartsBefore.get(p.spec.name) ?? 0);
    if (n > 0) restarts[p.spec.name] = n;
  }
  return {
    name: spec.name,
    title: spec.title,
    hypothesis: spec.hypothesis,
    injected: spec.injected,
    phases: [
      phaseStats(result.samples, 'before', start, faultAt),
      phaseStats(result.samples, 'during', faultAt, clearedAt),
      phaseStats(result.samples, 'after', clearedAt, end),
    ],
    recoveryMs: recoveryMs(result.samples, faultAt, clearedAt),
    jobsAccepted: result.acceptedJobs.length,
    jobsLost: lost.length,
    breakerStates,
    restarts,
    runnerMaxLagMs: Math.round(lag.max / 1e6),
  };
}

/**
 * Every skill replica breaker's transitions since `since` (epoch ms), by `process replica`, read
 * from the processes' own log lines (each transition is one) rather than by polling their metrics:
 * a poll on a busy machine misses states, and costs the cluster CPU.
 */
function breakerTransitions(ctx: ChaosContext, since: number): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const p of ctx.cluster.processes) {
    if (!/^(gateway|dispatcher)-/.test(p.spec.name)) continue;
    let text = '';
    try {
      text = readFileSync(p.spec.logFile, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line.includes('skill replica circuit breaker')) continue;
      try {
        const e = JSON.parse(line) as { time?: string; replica?: string; state?: string };
        if (!e.time || Date.parse(e.time) < since || !e.state) continue;
        (out[`${p.spec.name} ${e.replica}`] ??= []).push(e.state);
      } catch {
        // A line cut by a kill: not a transition we can read.
      }
    }
  }
  return out;
}

/** Requests of the whole experiment that failed (not a 2xx, not refused at once with Retry-After). */
export const failedTotal = (o: Pick<Outcome, 'phases'>) => o.phases.reduce((n, p) => n + p.failed, 0);
export const outcomesOf = (o: Pick<Outcome, 'phases'>) => {
  const all: Record<string, number> = {};
  for (const p of o.phases) for (const [k, v] of Object.entries(p.byOutcome)) all[k] = (all[k] ?? 0) + v;
  return all;
};
export { sleep };
