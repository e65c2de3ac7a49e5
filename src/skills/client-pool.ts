import { AppError } from '../errors/index.js';
import { SkillClient } from './client.js';
import type { CachedRegistry, SkillReplica } from './registry.js';

/**
 * gRPC clients for every live replica, reused across calls. A call goes to the replica of the
 * skill with the fewest outstanding calls; a replica that turns out to be down is skipped and
 * the call tried once on another.
 */
export class SkillClientPool {
  private readonly clients = new Map<string, SkillClient>();

  constructor(private readonly registry: CachedRegistry) {}

  /** The least busy live replica of `skill`, or SKILL_UNAVAILABLE. */
  async pick(skill: string, exclude?: string): Promise<SkillClient> {
    const { live } = await this.registry.get();
    this.evictGone(live);
    let best: SkillClient | undefined;
    for (const replica of live) {
      if (replica.name !== skill || replica.address === exclude) continue;
      const client = this.client(replica);
      if (!best || client.outstanding < best.outstanding) best = client;
    }
    if (!best) throw new AppError('SKILL_UNAVAILABLE', `${skill}: no replica is up`, { skill });
    return best;
  }

  /** Runs `fn` on the least busy replica, failing over once if that replica is unreachable. */
  async withReplica<T>(skill: string, fn: (client: SkillClient) => Promise<T>): Promise<T> {
    const first = await this.pick(skill);
    try {
      return await fn(first);
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'SKILL_UNAVAILABLE') throw err;
      this.registry.invalidate();
      const second = await this.pick(skill, first.address).catch(() => undefined);
      if (!second) throw err;
      return fn(second);
    }
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private client(replica: SkillReplica): SkillClient {
    let client = this.clients.get(replica.address);
    if (!client || client.skill !== replica.name) {
      client?.close();
      client = new SkillClient(replica.name, replica.address);
      this.clients.set(replica.address, client);
    }
    return client;
  }

  private evictGone(live: SkillReplica[]): void {
    if (live.length === this.clients.size) return;
    const addresses = new Set(live.map((r) => r.address));
    for (const [address, client] of this.clients) {
      if (!addresses.has(address)) {
        client.close();
        this.clients.delete(address);
      }
    }
  }
}
