import { AppError } from '../errors/index.js';
import { SkillClient } from './client.js';
import type { CachedRegistry, SkillReplica } from './registry.js';

/** Assumed capacity of a replica that does not announce one (an older build). */
const DEFAULT_MAX_CONCURRENT = 64;

export interface SkillClientPoolOptions {
  /** gRPC channels per replica (SKILL_CLIENT_CHANNELS); 1 when unset. */
  channels?: number;
  /**
   * How long a replica that refused a connection is passed over, unless no other is left. Its
   * registry entry outlives it by up to the TTL; this keeps calls off it meanwhile.
   */
  ejectMs?: number;
}

/**
 * gRPC clients for every live replica, reused across calls, each with a few channels. A call
 * goes to the replica of the skill with the fewest outstanding calls for its announced capacity
 * (least outstanding requests, weighted); equals take turns. A replica that turns out to be
 * down is skipped for `ejectMs` and the call is tried once on another.
 */
export class SkillClientPool {
  private readonly clients = new Map<string, SkillClient>();
  private readonly ejectedUntil = new Map<string, number>();
  private readonly channels: number;
  private readonly ejectMs: number;
  private turn = 0;
  private lastLive?: SkillReplica[];

  constructor(
    private readonly registry: CachedRegistry,
    options: SkillClientPoolOptions = {},
  ) {
    this.channels = options.channels ?? 1;
    this.ejectMs = options.ejectMs ?? 2_000;
  }

  /** The least busy live replica of `skill`, or SKILL_UNAVAILABLE. */
  async pick(skill: string, exclude?: string): Promise<SkillClient> {
    const { live } = await this.registry.get();
    this.evictGone(live);
    const now = Date.now();
    const candidates = live.filter((r) => r.name === skill && r.address !== exclude && r.state !== 'FAILED');
    // Replicas that just refused a connection only get calls when nothing else is left.
    const healthy = candidates.filter((r) => (this.ejectedUntil.get(r.address) ?? 0) <= now);
    const pool = healthy.length > 0 ? healthy : candidates;
    if (pool.length === 0) throw new AppError('SKILL_UNAVAILABLE', `${skill}: no replica is up`, { skill });
    // Start the scan at a rotating offset so replicas with equal load take turns.
    const start = this.turn++ % pool.length;
    let best: SkillClient | undefined;
    let bestLoad = Infinity;
    for (let i = 0; i < pool.length; i++) {
      const replica = pool[(start + i) % pool.length]!;
      const client = this.client(replica);
      const load = client.outstanding / (replica.capacity?.maxConcurrent ?? DEFAULT_MAX_CONCURRENT);
      if (load < bestLoad) {
        best = client;
        bestLoad = load;
      }
    }
    return best!;
  }

  /** Runs `fn` on the least busy replica, failing over once if that replica is unreachable. */
  async withReplica<T>(skill: string, fn: (client: SkillClient) => Promise<T>): Promise<T> {
    const first = await this.pick(skill);
    try {
      return await fn(first);
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'SKILL_UNAVAILABLE') throw err;
      this.ejectedUntil.set(first.address, Date.now() + this.ejectMs);
      this.registry.invalidate();
      const second = await this.pick(skill, first.address).catch(() => undefined);
      if (!second) throw err;
      return fn(second);
    }
  }

  /** Replicas with a client, and the calls each has in flight (for metrics and tests). */
  loads(): { skill: string; address: string; outstanding: number; channels: number }[] {
    return [...this.clients.values()].map((c) => ({
      skill: c.skill,
      address: c.address,
      outstanding: c.outstanding,
      channels: c.channelCount,
    }));
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private client(replica: SkillReplica): SkillClient {
    let client = this.clients.get(replica.address);
    if (!client || client.skill !== replica.name) {
      client?.close();
      client = new SkillClient(replica.name, replica.address, { channels: this.channels });
      this.clients.set(replica.address, client);
    }
    return client;
  }

  private evictGone(live: SkillReplica[]): void {
    // The cached registry hands out the same array until it refreshes: nothing changed.
    if (live === this.lastLive) return;
    this.lastLive = live;
    const addresses = new Set(live.map((r) => r.address));
    for (const [address, client] of this.clients) {
      // A client with calls in flight is closed on a later refresh, once they are answered.
      if (!addresses.has(address) && client.outstanding === 0) {
        client.close();
        this.clients.delete(address);
        this.ejectedUntil.delete(address);
      }
    }
  }
}
