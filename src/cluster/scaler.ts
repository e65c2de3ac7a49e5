import { Counter, Gauge, Registry } from 'prom-client';
import { METRICS } from '../observability/catalogue.js';
import { Autoscaler, type Bounds, type Decision, type ScalePolicy } from './autoscaler.js';
import type { ManagedProcess } from './managed-process.js';
import { CpuSampler } from './proc-stats.js';

/** A set of interchangeable processes the supervisor can grow and shrink. */
export interface Pool {
  /** `gateway`, `dispatcher` or `skill:<name>`: what `skillserve scale` names. */
  key: string;
  role: 'gateway' | 'dispatcher' | 'skill';
  skill?: string;
  /** The autoscaler's bounds; `autoscale: false` keeps the pool at what it is set to. */
  bounds: Bounds;
  autoscale: boolean;
  members: ManagedProcess[];
  /** Starts one more member; resolves once it takes traffic (gateways: ready and in nginx). */
  grow(): Promise<void>;
  /** Takes the newest member out of traffic, lets it drain and stops it. */
  shrink(): Promise<void>;
}

export interface ProcessView {
  name: string;
  pid?: number;
  state: 'running' | 'down';
  cpuPercent?: number;
  rssBytes?: number;
  restarts: number;
  uptimeS?: number;
  adminPort?: number;
}

export interface PoolView {
  key: string;
  replicas: number;
  bounds: Bounds;
  autoscale: boolean;
  cpuPercent?: number;
  lastDecision?: Decision;
}

const LIMIT = 64;

/**
 * Samples every process's CPU and memory from /proc, asks the {@link Autoscaler} about each pool
 * and carries out its steps (and `skillserve scale`'s), one step at a time per pool. Decisions
 * are log lines and metrics (`skillserve_replicas`, `skillserve_scaling_decisions_total`).
 */
export class Scaler {
  private readonly sampler = new CpuSampler();
  private readonly autoscaler: Autoscaler;
  private readonly samples = new Map<string, { cpuPercent: number; rssBytes: number }>();
  private readonly poolCpu = new Map<string, number>();
  private readonly decisions = new Map<string, Decision>();
  /** One change at a time per pool. */
  private readonly busy = new Map<string, Promise<unknown>>();
  readonly registry = new Registry();
  private readonly replicas: Gauge<'role' | 'skill'>;
  private readonly decisionsTotal: Counter<'role' | 'skill' | 'direction' | 'reason'>;

  constructor(
    private readonly pools: Pool[],
    policy: ScalePolicy,
    private readonly opts: { enabled: boolean; log: (line: string) => void; all: () => readonly ManagedProcess[] },
  ) {
    this.autoscaler = new Autoscaler(policy);
    this.replicas = new Gauge({
      name: METRICS.replicas.name,
      help: METRICS.replicas.help,
      labelNames: ['role', 'skill'],
      registers: [this.registry],
      collect: () => {
        for (const p of this.pools) this.replicas.set({ role: p.role, skill: p.skill ?? '' }, p.members.length);
      },
    });
    this.decisionsTotal = new Counter({
      name: METRICS.scalingDecisions.name,
      help: METRICS.scalingDecisions.help,
      labelNames: ['role', 'skill', 'direction', 'reason'],
      registers: [this.registry],
    });
    for (const p of pools)
      for (const direction of ['up', 'down'])
        for (const reason of ['cpu_high', 'cpu_low', 'manual'])
          this.decisionsTotal.inc({ role: p.role, skill: p.skill ?? '', direction, reason }, 0);
  }

  all(): readonly ManagedProcess[] {
    return this.opts.all();
  }

  pool(key: string): Pool | undefined {
    return this.pools.find((p) => p.key === key);
  }

  /** One sampling round: CPU of every process, then one decision per autoscaled pool. */
  tick(now = Date.now()): void {
    const all = this.opts.all();
    for (const p of all) {
      const s = p.pid ? this.sampler.sample(p.pid) : undefined;
      if (s) this.samples.set(p.spec.name, s);
      else this.samples.delete(p.spec.name);
    }
    this.sampler.retain(all.map((p) => p.pid).filter((pid): pid is number => !!pid));
    for (const pool of this.pools) {
      const cpus = pool.members.map((m) => this.samples.get(m.spec.name)?.cpuPercent).filter((c) => c !== undefined);
      if (cpus.length === 0) continue;
      const avg = cpus.reduce((a, b) => a + b, 0) / cpus.length;
      this.poolCpu.set(pool.key, avg);
      if (!this.opts.enabled || !pool.autoscale || this.busy.has(pool.key)) continue;
      const decision = this.autoscaler.decide(pool.key, avg, pool.members.length, pool.bounds, now);
      this.decisions.set(pool.key, decision);
      if (decision.action !== 'hold') void this.apply(pool, decision).catch(() => undefined);
    }
  }

  /** Sets pools to the given counts (`skillserve scale gateway=4 skill:onnx=2`), one step at a time. */
  async scale(counts: Record<string, number>): Promise<string[]> {
    const problems: string[] = [];
    for (const [key, n] of Object.entries(counts)) {
      const pool = this.pool(key);
      if (!pool) problems.push(`${key}: no such pool (${this.pools.map((p) => p.key).join(', ')})`);
      else if (!Number.isInteger(n) || n < 1 || n > Math.max(pool.bounds.max, 1))
        problems.push(`${key}: ${n} is not between 1 and ${pool.bounds.max}`);
    }
    if (problems.length > 0) throw new Error(problems.join('; '));
    const lines: string[] = [];
    await Promise.all(
      Object.entries(counts).map(async ([key, n]) => {
        const pool = this.pool(key)!;
        const from = pool.members.length;
        const decision: Decision = {
          action: n > from ? 'up' : n < from ? 'down' : 'hold',
          reason: 'manual',
          target: n,
          detail: `set by hand: ${from} → ${n}`,
          at: Date.now(),
        };
        this.autoscaler.stepped(key, decision.at);
        this.decisions.set(key, decision);
        await this.apply(pool, decision);
        lines.push(`${key}: ${from} → ${pool.members.length}`);
      }),
    );
    return lines;
  }

  private apply(pool: Pool, decision: Decision): Promise<void> {
    const run = async () => {
      this.opts.log(`scale ${pool.key}: ${decision.action} (${decision.reason}) — ${decision.detail}`);
      for (let guard = 0; pool.members.length !== decision.target && guard < LIMIT; guard++) {
        const up = pool.members.length < decision.target;
        try {
          await (up ? pool.grow() : pool.shrink());
        } catch (err) {
          this.opts.log(`scale ${pool.key}: ${up ? 'adding' : 'removing'} a replica failed: ${(err as Error).message}`);
          throw err;
        }
        this.decisionsTotal.inc({
          role: pool.role,
          skill: pool.skill ?? '',
          direction: up ? 'up' : 'down',
          reason: decision.reason,
        });
      }
      this.opts.log(`scale ${pool.key}: now ${pool.members.length}`);
    };
    const previous = this.busy.get(pool.key) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(run);
    this.busy.set(pool.key, next);
    const clear = () => {
      if (this.busy.get(pool.key) === next) this.busy.delete(pool.key);
    };
    next.then(clear, clear);
    return next;
  }

  /** Waits for every change under way (before the cluster stops). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.busy.values()]);
  }

  processes(now = Date.now()): ProcessView[] {
    return this.opts.all().map((p) => {
      const s = this.samples.get(p.spec.name);
      return {
        name: p.spec.name,
        ...(p.pid ? { pid: p.pid, uptimeS: Math.round((now - p.startedAt) / 1000) } : {}),
        state: p.pid ? 'running' : 'down',
        ...(s ? { cpuPercent: Math.round(s.cpuPercent * 10) / 10, rssBytes: s.rssBytes } : {}),
        restarts: p.restarts,
        ...(p.adminPort ? { adminPort: p.adminPort } : {}),
      };
    });
  }

  poolViews(): PoolView[] {
    return this.pools.map((p) => {
      const cpu = this.poolCpu.get(p.key);
      const d = this.decisions.get(p.key);
      return {
        key: p.key,
        replicas: p.members.length,
        bounds: p.bounds,
        autoscale: this.opts.enabled && p.autoscale,
        ...(cpu !== undefined ? { cpuPercent: Math.round(cpu * 10) / 10 } : {}),
        ...(d ? { lastDecision: d } : {}),
      };
    });
  }
}
