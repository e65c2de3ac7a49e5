import type { RedisClient } from '../lib/redis.js';
import type { ModelState, SkillDescriptor } from './backend.js';

/** A skill as the catalogue knows it: what it offers, whether or not a replica is up. */
export interface SkillInfo extends SkillDescriptor {
  name: string;
}

/** What one replica takes at once, as it announces it. */
export interface SkillCapacity {
  /** Calls it works on at once; callers weigh replicas by it. */
  maxConcurrent: number;
  /** Items it accepts in one InferBatch. */
  maxBatch: number;
}

/** One running replica of a skill. */
export interface SkillReplica extends SkillInfo {
  address: string;
  instance: string;
  startedAt: number;
  // version, state and capacity are optional so replicas of an older build, which do not
  // announce them, still count as live.
  /** skillserve version the replica runs. */
  version?: string;
  /** Its model's state at the last heartbeat. */
  state?: ModelState;
  capacity?: SkillCapacity;
  /** Epoch ms after which the replica counts as gone unless it heartbeats again. */
  expiresAt: number;
}

export interface RegistrySnapshot {
  /** Every skill ever announced on this cluster, by name. */
  catalogue: Map<string, SkillInfo>;
  /** Replicas whose heartbeat is current. */
  live: SkillReplica[];
}

/**
 * Skill discovery in Redis. Skills announce themselves with a heartbeat, so dispatchers
 * and gateways find them without fixed ports. Two hashes: the catalogue (name → what the
 * skill offers; kept, so a skill that is down is still known and answers 503 rather than 404)
 * and the live set (name|address → replica with its expiry).
 *
 * Expiry uses the announcing process's clock; replicas on other hosts need synchronised clocks
 * within a fraction of the TTL, which NTP gives.
 */
export class SkillRegistry {
  private readonly catalogueKey: string;
  private readonly liveKey: string;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
  ) {
    ({ catalogue: this.catalogueKey, live: this.liveKey } = registryKeys(prefix));
  }

  async announce(replica: Omit<SkillReplica, 'expiresAt'>, ttlMs: number): Promise<void> {
    // The catalogue keeps what the skill offers; per-replica facts live in the live entry only.
    const { address, instance: _i, startedAt: _s, version: _v, state: _st, capacity: _c, ...info } = replica;
    await this.redis
      .multi()
      .hset(this.catalogueKey, replica.name, JSON.stringify(info))
      .hset(this.liveKey, `${replica.name}|${address}`, JSON.stringify({ ...replica, expiresAt: Date.now() + ttlMs }))
      .exec();
  }

  async withdraw(name: string, address: string): Promise<void> {
    await this.redis.hdel(this.liveKey, `${name}|${address}`);
  }

  /**
   * The catalogue and the live replicas. `unreachableSince` (epoch ms): the reader could not
   * reach Redis from then until now, and neither could the skills, so a replica whose entry
   * expired meanwhile is not taken for dead — it had no way to heartbeat. It counts as live in
   * this snapshot (and is not swept); its next heartbeat, or its absence, settles it.
   */
  async snapshot(unreachableSince?: number): Promise<RegistrySnapshot> {
    const [catalogueRes, liveRes] =
      (await this.redis.multi().hgetall(this.catalogueKey).hgetall(this.liveKey).exec()) ?? [];
    const rawCatalogue = (catalogueRes?.[1] ?? {}) as Record<string, string>;
    const rawLive = (liveRes?.[1] ?? {}) as Record<string, string>;
    const now = Date.now();
    const catalogue = new Map<string, SkillInfo>();
    for (const [name, json] of Object.entries(rawCatalogue)) catalogue.set(name, { name, ...JSON.parse(json) });
    const live: SkillReplica[] = [];
    const expired: string[] = [];
    for (const [field, json] of Object.entries(rawLive)) {
      const replica = JSON.parse(json) as SkillReplica;
      if (replica.expiresAt > now || (unreachableSince !== undefined && replica.expiresAt > unreachableSince))
        live.push(replica);
      else expired.push(field);
    }
    // Replicas that died without withdrawing are swept by whoever reads them first, each only
    // if it is still the entry read: one that re-announced meanwhile (a skill coming back with
    // Redis) must not be deleted by a reader that saw its old, expired entry.
    if (expired.length > 0) {
      const args = expired.flatMap((field) => [field, rawLive[field]!]);
      void this.redis.eval(sweepLua, 1, this.liveKey, ...args).catch(() => undefined);
    }
    return { catalogue, live };
  }
}

/**
 * The registry's two hashes. One hash tag for both: snapshot reads them in one MULTI and announce
 * writes them in one, which a Redis Cluster runs only within one slot.
 */
export function registryKeys(prefix: string): { catalogue: string; live: string } {
  return { catalogue: `${prefix}:{registry}:catalogue`, live: `${prefix}:{registry}:live` };
}

/** HDEL each field whose value is still the one given (compare-and-delete). */
const sweepLua = `
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    n = n + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return n`;

/**
 * A registry snapshot reused for `maxAgeMs`, so the hot path does not ask Redis on every
 * request. Concurrent callers share one refresh, and wait for it at most `waitMs` (counted from
 * when the refresh started) when there is an older snapshot to fall back on: a hung Redis costs
 * the first callers that long, and the others nothing.
 */
export class CachedRegistry {
  private value?: { at: number; snapshot: RegistrySnapshot };
  private pending?: Promise<RegistrySnapshot>;
  private pendingSince = 0;
  /**
   * Since when refreshes fail (Redis away or hung): until one succeeds, nobody waits for one, and
   * the first that does forgives the heartbeats the outage swallowed (see SkillRegistry.snapshot).
   */
  private failingSince?: number;
  private lastOkAt?: number;

  constructor(
    private readonly registry: SkillRegistry,
    private readonly maxAgeMs: number,
    private readonly waitMs = Infinity,
  ) {}

  /**
   * The snapshot, refreshed when older than `maxAgeMs`. When Redis cannot be read (or does not
   * answer within `waitMs`), the last snapshot keeps serving (the degraded path calls skills
   * directly from it); with none, it throws.
   */
  async get(): Promise<RegistrySnapshot> {
    const now = Date.now();
    const value = this.value;
    if (value && now - value.at < this.maxAgeMs) return value.snapshot;
    if (!this.pending) {
      this.pendingSince = now;
      const outageFrom = this.failingSince;
      this.pending = this.registry
        .snapshot(outageFrom)
        .then((snapshot) => {
          // Right after an outage, read again soon: the skills are announcing themselves anew.
          this.value = { at: outageFrom === undefined ? Date.now() : Date.now() - this.maxAgeMs / 2, snapshot };
          this.failingSince = undefined;
          this.lastOkAt = Date.now();
          return snapshot;
        })
        .catch((err: unknown) => {
          this.failingSince ??= this.lastOkAt ?? this.pendingSince;
          if (this.value) return this.value.snapshot;
          throw err;
        })
        .finally(() => {
          this.pending = undefined;
        });
    }
    const left = this.failingSince !== undefined ? 0 : this.pendingSince + this.waitMs - now;
    if (!value || left === Infinity) return this.pending;
    if (left <= 0) return value.snapshot;
    let timer: NodeJS.Timeout | undefined;
    const fallback = new Promise<RegistrySnapshot>((resolve) => {
      timer = setTimeout(() => resolve(value.snapshot), left);
    });
    try {
      return await Promise.race([this.pending, fallback]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Forget the cached snapshot, e.g. after a replica was found dead. */
  invalidate(): void {
    this.value = undefined;
  }
}
