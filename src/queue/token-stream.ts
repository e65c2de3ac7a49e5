import type { RedisClient } from '../lib/redis.js';

/**
 * The token channel of a streamed job: a Redis Stream per job, written by the one dispatcher
 * running the job and read (XREAD BLOCK, from the start) by every gateway waiting on it.
 *
 * - Order: one producer appends with XADD; stream ids are monotonic, readers see entries in order.
 * - Late readers: a coalesced request that joins a running stream reads it from the first entry.
 * - Ending: the last entry is `end` (with finish reason and usage) or `error` (an AppError's JSON).
 * - Producer death: while it waits on the skill the producer appends a `ping` every
 *   {@link HEARTBEAT_MS}; a reader that sees nothing for {@link PRODUCER_SILENCE_MS} after the
 *   first entry gives up. A job redelivered after its dispatcher died (BullMQ's stalled check)
 *   finds the stream claimed and fails instead of producing a second, duplicate stream.
 * - Cancellation: readers count themselves in `…:readers`; the producer cancels the skill call
 *   when the count falls back to 0 (every client went away).
 *
 * Keys share one hash tag per job, so a Redis Cluster keeps them in one slot.
 */
export const HEARTBEAT_MS = 500;
export const PRODUCER_SILENCE_MS = 3_000;
/** How long a finished stream stays readable (a request coalesced onto it just before it ended). */
const RETAIN_MS = 60_000;

export type TokenEntry =
  | { type: 'start' }
  | { type: 'delta'; text: string }
  | { type: 'ping' }
  | { type: 'end'; finishReason: string | null; usage: unknown }
  | { type: 'error'; error: unknown };

export function tokenStreamKeys(keyPrefix: string, jobId: string) {
  const base = `${keyPrefix}:{tok:${jobId}}`;
  return { stream: base, owner: `${base}:owner`, readers: `${base}:readers` };
}

/** Decodes one XREAD entry's field list. */
export function decodeEntry(fields: string[]): TokenEntry | undefined {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  switch (f.t) {
    case 's':
      return { type: 'start' };
    case 'd':
      return { type: 'delta', text: f.v ?? '' };
    case 'p':
      return { type: 'ping' };
    case 'e': {
      const v = JSON.parse(f.v ?? '{}') as { finish_reason?: string | null; usage?: unknown };
      return { type: 'end', finishReason: v.finish_reason ?? null, usage: v.usage };
    }
    case 'x':
      return { type: 'error', error: JSON.parse(f.v ?? 'null') };
    default:
      return undefined;
  }
}

/** The dispatcher's side: claims a job's stream and appends to it. */
export class TokenStreamWriter {
  private readonly keys: ReturnType<typeof tokenStreamKeys>;

  constructor(
    private readonly redis: RedisClient,
    keyPrefix: string,
    jobId: string,
    /** Epoch ms after which nobody reads the stream (the job's deadline). */
    private readonly until: number,
  ) {
    this.keys = tokenStreamKeys(keyPrefix, jobId);
  }

  private ttlMs(): number {
    return Math.max(0, this.until - Date.now()) + RETAIN_MS;
  }

  /** True when this producer owns the stream; false when another one started it before. */
  async claim(owner: string): Promise<boolean> {
    const ok = await this.redis.set(this.keys.owner, owner, 'PX', this.ttlMs(), 'NX');
    if (ok !== 'OK') return false;
    await this.append('s');
    await this.redis.pexpire(this.keys.stream, this.ttlMs());
    return true;
  }

  /**
   * Appends without waiting: commands on one connection run in order, so entries keep the order
   * of the calls, and a slow XADD never holds the next token back.
   */
  delta(text: string): void {
    void this.append('d', text).catch(() => undefined);
  }

  ping(): void {
    void this.append('p').catch(() => undefined);
  }

  async end(result: { finish_reason?: unknown; usage?: unknown }): Promise<void> {
    await this.append(
      'e',
      JSON.stringify({ finish_reason: result.finish_reason ?? null, usage: result.usage ?? null }),
    );
  }

  async error(error: unknown): Promise<void> {
    await this.append('x', JSON.stringify(error));
  }

  /** True once every reader that joined has left (a count back at 0; none yet is not gone). */
  async readersGone(): Promise<boolean> {
    return (await this.redis.get(this.keys.readers)) === '0';
  }

  private append(type: string, value?: string): Promise<unknown> {
    const fields = value === undefined ? ['t', type] : ['t', type, 'v', value];
    return this.redis.xadd(this.keys.stream, '*', ...fields);
  }
}
