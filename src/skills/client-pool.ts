import { AppError } from '../errors/index.js';
import { SkillClient } from './client.js';
import { type BreakerSettings, type BreakerState, DEFAULT_BREAKER, ReplicaBreaker } from './replica-breaker.js';
import type { CachedRegistry, SkillReplica } from './registry.js';

/** Assumed capacity of a replica that does not announce one (an older build). */
const DEFAULT_MAX_CONCURRENT = 64;

export interface SkillClientPoolOptions {
  /** gRPC channels per replica (SKILL_CLIENT_CHANNELS); 1 when unset. */
  channels?: number;
  /** HTTP/2 keepalive (SKILL_KEEPALIVE_MS): how fast calls on a hung replica are dropped. */
  keepaliveMs?: number;
  /** Each replica's circuit breaker (SKILL_BREAKER_*). */
  breaker?: Partial<BreakerSettings>;
  /** Told of every breaker transition (a log line; the state itself is in {@link breakerStates}). */
  onBreakerChange?: (change: { skill: string; replica: string; state: BreakerState }) => void;
}

/** One replica's breaker state, for the metric and `skillserve status`. */
export interface ReplicaBreakerView {
  skill: string;
  /** The replica's instance id, as it announced it. */
  replica: string;
  state: BreakerState;
}

/** Deadline of the health check that probes a half-open replica. */
const PROBE_DEADLINE_MS = 1_000;

interface Member {
  client: SkillClient;
  breaker: ReplicaBreaker;
  instance: string;
}

/**
 * gRPC clients for every live replica, reused across calls, each with a few channels and its own
 * circuit breaker ({@link ReplicaBreaker}). A call goes to the replica of the skill, among those
 * whose breaker is closed, with the fewest outstanding calls for its announced capacity (least
 * outstanding requests, weighted); equals take turns. A replica whose connection is refused or
 * dropped is taken out at once and the call is tried once on another. When every replica's
 * breaker is open the call fails at once with BREAKER_OPEN and a Retry-After until the next probe.
 * The dispatcher and the gateway's direct path both call skills through this one class.
 */
export class SkillClientPool {
  private readonly members = new Map<string, Member>();
  private readonly channels: number;
  private readonly keepaliveMs?: number;
  private readonly breakerSettings: BreakerSettings;
  private turn = 0;
  private lastLive?: SkillReplica[];

  constructor(
    private readonly registry: CachedRegistry,
    private readonly options: SkillClientPoolOptions = {},
  ) {
    this.channels = options.channels ?? 1;
    this.keepaliveMs = options.keepaliveMs;
    this.breakerSettings = { ...DEFAULT_BREAKER, ...options.breaker };
  }

  /** The least busy live replica of `skill` whose breaker is closed; SKILL_UNAVAILABLE or BREAKER_OPEN. */
  async pick(skill: string, exclude?: string): Promise<SkillClient> {
    return (await this.pickMember(skill, exclude)).client;
  }

  private async pickMember(skill: string, exclude?: string): Promise<Member> {
    const { live } = await this.registry.get();
    this.evictGone(live);
    const candidates = live.filter((r) => r.name === skill && r.address !== exclude && r.state !== 'FAILED');
    if (candidates.length === 0) throw new AppError('SKILL_UNAVAILABLE', `${skill}: no replica is up`, { skill });
    const pool = candidates.filter((r) => this.member(r).breaker.closed);
    if (pool.length === 0) {
      const retryAfterS = Math.min(...candidates.map((r) => this.member(r).breaker.retryAfterS()));
      throw new AppError('BREAKER_OPEN', `${skill}: every replica is failing; calls are paused for ${retryAfterS} s`, {
        skill,
        retryAfterS,
      });
    }
    // Start the scan at a rotating offset so replicas with equal load take turns.
    const start = this.turn++ % pool.length;
    let best: Member | undefined;
    let bestLoad = Infinity;
    for (let i = 0; i < pool.length; i++) {
      const replica = pool[(start + i) % pool.length]!;
      const member = this.member(replica);
      const load = member.client.outstanding / (replica.capacity?.maxConcurrent ?? DEFAULT_MAX_CONCURRENT);
      if (load < bestLoad) {
        best = member;
        bestLoad = load;
      }
    }
    return best!;
  }

  /**
   * Runs `fn` on the least busy replica, through its breaker, failing over once if that replica
   * is unreachable. `budgetMs` is the deadline `fn` gives its call (a timeout within a short
   * budget is not held against the replica).
   */
  async withReplica<T>(skill: string, fn: (client: SkillClient) => Promise<T>, budgetMs = Infinity): Promise<T> {
    const first = await this.pickMember(skill);
    try {
      return await first.breaker.run(() => fn(first.client), budgetMs);
    } catch (err) {
      if (!(err instanceof AppError) || (err.code !== 'SKILL_UNAVAILABLE' && err.code !== 'BREAKER_OPEN')) throw err;
      // Refused or dropped: no need to wait for a failure rate, and no call should follow it there.
      if (err.code === 'SKILL_UNAVAILABLE') first.breaker.trip();
      this.registry.invalidate();
      const second = await this.pickMember(skill, first.client.address).catch(() => undefined);
      if (!second) throw err;
      return second.breaker.run(() => fn(second.client), budgetMs);
    }
  }

  /** Replicas with a client, and the calls each has in flight (for metrics and tests). */
  loads(): { skill: string; address: string; outstanding: number; channels: number }[] {
    return [...this.members.values()].map(({ client: c }) => ({
      skill: c.skill,
      address: c.address,
      outstanding: c.outstanding,
      channels: c.channelCount,
    }));
  }

  /** Every known replica's breaker state (0 closed, 1 open, 2 half-open in the metric). */
  breakerStates(): ReplicaBreakerView[] {
    return [...this.members.values()].map((m) => ({
      skill: m.client.skill,
      replica: m.instance,
      state: m.breaker.state,
    }));
  }

  close(): void {
    for (const m of this.members.values()) this.drop(m);
    this.members.clear();
  }

  private member(replica: SkillReplica): Member {
    let member = this.members.get(replica.address);
    if (!member || member.client.skill !== replica.name) {
      if (member) this.drop(member);
      const client = new SkillClient(replica.name, replica.address, {
        channels: this.channels,
        keepaliveMs: this.keepaliveMs,
      });
      const breaker = new ReplicaBreaker(
        this.breakerSettings,
        async () => {
          const status = await client.check(PROBE_DEADLINE_MS);
          if (status !== 'SERVING') throw new Error(`health ${status}`);
        },
        (state) => this.options.onBreakerChange?.({ skill: replica.name, replica: replica.instance, state }),
      );
      member = { client, breaker, instance: replica.instance };
      this.members.set(replica.address, member);
    }
    return member;
  }

  private drop(member: Member): void {
    member.breaker.shutdown();
    member.client.close();
  }

  private evictGone(live: SkillReplica[]): void {
    // The cached registry hands out the same array until it refreshes: nothing changed.
    if (live === this.lastLive) return;
    this.lastLive = live;
    const addresses = new Set(live.map((r) => r.address));
    for (const [address, member] of this.members) {
      // A client with calls in flight is closed on a later refresh, once they are answered.
      if (!addresses.has(address) && member.client.outstanding === 0) {
        this.drop(member);
        this.members.delete(address);
      }
    }
  }
}
