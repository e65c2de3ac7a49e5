import type { RedisClient } from '../lib/redis.js';
import type { Logger } from '../observability/logger.js';
import { decodeEntry, type TokenEntry, tokenStreamKeys } from './token-stream.js';

/** Longest one XREAD blocks; a new stream to follow interrupts it at once (CLIENT UNBLOCK). */
const BLOCK_MS = 1_000;
/**
 * On a Redis Cluster each job's stream is in a slot of its own and one XREAD cannot span slots,
 * nor can CLIENT UNBLOCK reach a blocked connection on another node: there the reader polls each
 * stream (one non-blocking XREAD per stream, auto-pipelined per node) this often while idle.
 */
const CLUSTER_POLL_MS = 20;

interface Follower {
  key: string;
  readersKey: string;
  lastId: string;
  onEntries: (entries: TokenEntry[]) => void;
  onError: (err: unknown) => void;
}

/**
 * A gateway's reader of job token streams (see token-stream.ts): one blocking connection runs one
 * XREAD over every stream this gateway follows, so a thousand concurrent streams cost one
 * connection, not a thousand. Following a new stream interrupts the XREAD in flight (CLIENT
 * UNBLOCK from the command connection) so its first token is not held back by the block timeout.
 */
export class TokenStreamReader {
  private readonly followers = new Map<string, Set<Follower>>();
  private clientId: number | undefined;
  private running = false;
  /** Keys of the XREAD in flight, to know whether it must be interrupted for a new stream. */
  private inFlight = new Set<string>();
  private closed = false;

  constructor(
    private readonly blocking: RedisClient,
    private readonly commands: RedisClient,
    private readonly keyPrefix: string,
    private readonly logger: Logger,
  ) {
    // A reconnected connection has a new id.
    blocking.on('ready', () => (this.clientId = undefined));
  }

  /**
   * Follows job `jobId`'s stream from its first entry: `onEntries` gets entries in order as they
   * come. The reader counts itself among the stream's readers (the producer cancels the skill
   * call when the count falls back to 0). Returns the function that stops following.
   */
  follow(jobId: string, onEntries: (entries: TokenEntry[]) => void, onError: (err: unknown) => void): () => void {
    const keys = tokenStreamKeys(this.keyPrefix, jobId);
    const f: Follower = { key: keys.stream, readersKey: keys.readers, lastId: '0', onEntries, onError };
    let set = this.followers.get(f.key);
    if (!set) this.followers.set(f.key, (set = new Set()));
    set.add(f);
    void this.commands
      .multi()
      .incr(keys.readers)
      .pexpire(keys.readers, 10 * 60_000)
      .exec()
      .catch(() => undefined);
    this.wake(f.key);
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      set.delete(f);
      if (set.size === 0) this.followers.delete(f.key);
      void this.commands.decr(keys.readers).catch(() => undefined);
    };
  }

  close(): void {
    this.closed = true;
    for (const set of this.followers.values()) for (const f of set) f.onError(new Error('the gateway is closing'));
    this.followers.clear();
  }

  /** Starts the loop, or interrupts its XREAD until one that includes `key` is under way. */
  private wake(key: string): void {
    if (!this.running) {
      this.running = true;
      void this.loop();
      return;
    }
    // A polling reader (cluster) takes new streams on its next round.
    if (this.blocking.isCluster) return;
    const interrupt = (tries: number) => {
      if (this.inFlight.has(key) || !this.followers.has(key) || tries > 20) return;
      if (this.clientId !== undefined && this.inFlight.size > 0) {
        void this.commands.client('UNBLOCK', this.clientId).catch(() => undefined);
      }
      // The UNBLOCK may reach Redis before the XREAD it was meant for: look again shortly.
      setTimeout(() => interrupt(tries + 1), 5).unref();
    };
    interrupt(0);
  }

  private async loop(): Promise<void> {
    try {
      while (this.followers.size > 0 && !this.closed) {
        if (this.clientId === undefined && !this.blocking.isCluster)
          this.clientId = Number(await this.blocking.client('ID'));
        const keys = [...this.followers.keys()];
        const ids = keys.map((k) => this.lastIdOf(k));
        this.inFlight = new Set(keys);
        let reply: [string, [string, string[]][]][] | null;
        try {
          reply = this.blocking.isCluster
            ? await this.poll(keys, ids)
            : ((await this.blocking.xread(
                'COUNT',
                1000,
                'BLOCK',
                BLOCK_MS,
                'STREAMS',
                ...keys,
                ...ids,
              )) as typeof reply);
        } catch (err) {
          this.inFlight = new Set();
          for (const set of this.followers.values()) for (const f of set) f.onError(err);
          this.logger.warn({ err }, 'reading token streams failed');
          await new Promise((r) => setTimeout(r, 100));
          continue;
        } finally {
          this.inFlight = new Set();
        }
        for (const [key, entries] of reply ?? []) {
          const set = this.followers.get(key);
          if (!set || entries.length === 0) continue;
          const last = entries[entries.length - 1]![0];
          for (const f of set) {
            // A follower that joined later read the start already: only what is new to it.
            const fresh = entries.filter(([id]) => compareIds(id, f.lastId) > 0);
            f.lastId = last;
            const decoded = fresh.map(([, fields]) => decodeEntry(fields)).filter((e) => e !== undefined);
            if (decoded.length > 0) f.onEntries(decoded);
          }
        }
      }
    } finally {
      this.running = false;
      // A stream followed while the loop was ending starts it again.
      if (this.followers.size > 0 && !this.closed) this.wake([...this.followers.keys()][0]!);
    }
  }

  /** One round of a cluster's polling reader: each stream on its own; waits a little when none had news. */
  private async poll(keys: string[], ids: string[]): Promise<[string, [string, string[]][]][] | null> {
    const replies = await Promise.all(
      keys.map(
        (k, i) =>
          this.blocking.xread('COUNT', 1000, 'STREAMS', k, ids[i]!) as Promise<[string, [string, string[]][]][] | null>,
      ),
    );
    const reply = replies.flatMap((r) => r ?? []);
    if (reply.length === 0) await new Promise((r) => setTimeout(r, CLUSTER_POLL_MS));
    return reply;
  }

  /** Followers of one stream read together: from the earliest entry any of them still needs. */
  private lastIdOf(key: string): string {
    let min: string | undefined;
    for (const f of this.followers.get(key) ?? [])
      if (min === undefined || compareIds(f.lastId, min) < 0) min = f.lastId;
    return min ?? '0';
  }
}

function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am - bm || as - bs;
}
