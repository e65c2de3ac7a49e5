import type { Queue } from 'bullmq';
import { AppError } from '../errors/index.js';

/** How long a gateway trusts a queue depth it read. */
const DEPTH_TTL_MS = 200;
/** Completions are counted in windows of this length for the throughput estimate. */
const WINDOW_MS = 2_000;

/**
 * Per-skill admission control: beyond `maxDepth` waiting jobs the gateway answers 503 at once,
 * with a Retry-After estimated from the queue depth and the throughput it has seen (every gateway
 * hears every completion), instead of letting latency grow without bound.
 */
export class Backpressure {
  private readonly depths = new Map<string, { at: number; depth: number; pending?: Promise<number> }>();
  private readonly rates = new Map<string, { windowStart: number; count: number; perS: number }>();

  constructor(private readonly maxDepth: (skill: string) => number) {}

  /** Throws OVERLOADED when the skill's queue is full. */
  async admit(skill: string, queue: Queue): Promise<void> {
    const depth = await this.depth(skill, queue);
    const max = this.maxDepth(skill);
    if (depth < max) return;
    const perS = this.rate(skill);
    const retryAfterS = Math.min(60, Math.max(1, Math.ceil(perS > 0 ? depth / perS : depth / 10)));
    throw new AppError(
      'OVERLOADED',
      `${skill}: ${depth} jobs are waiting (limit ${max})`,
      { skill, depth },
      { retryAfterS },
    );
  }

  /** A job of `skill` finished (on any gateway's channel). */
  completed(skill: string, now = Date.now()): void {
    const r = this.rates.get(skill) ?? { windowStart: now, count: 0, perS: 0 };
    if (now - r.windowStart >= WINDOW_MS) {
      const measured = (r.count * 1000) / (now - r.windowStart);
      r.perS = r.perS === 0 ? measured : 0.5 * r.perS + 0.5 * measured;
      r.windowStart = now;
      r.count = 0;
    }
    r.count++;
    this.rates.set(skill, r);
    const d = this.depths.get(skill);
    if (d && d.depth > 0) d.depth--;
  }

  /**
   * Whether the skill's queue had no job waiting when last read; a read older than the depth's
   * TTL starts a new one (in the background: the answer is the last known).
   */
  idle(skill: string, queue: Queue): boolean {
    const d = this.depths.get(skill);
    if (!d || Date.now() - d.at >= DEPTH_TTL_MS) this.depth(skill, queue).catch(() => undefined);
    return (d?.depth ?? 0) === 0;
  }

  /** Jobs per second recently completed for `skill`. */
  rate(skill: string): number {
    return this.rates.get(skill)?.perS ?? 0;
  }

  private async depth(skill: string, queue: Queue): Promise<number> {
    const now = Date.now();
    const d = this.depths.get(skill);
    if (d && now - d.at < DEPTH_TTL_MS) return d.depth;
    if (d?.pending) return d.pending;
    const entry = d ?? { at: 0, depth: 0 };
    entry.pending = queue
      .getJobCounts('waiting', 'prioritized', 'delayed')
      .then((c) => (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0))
      .then((depth) => {
        entry.depth = depth;
        entry.at = Date.now();
        return depth;
      })
      .finally(() => {
        entry.pending = undefined;
      });
    this.depths.set(skill, entry);
    return entry.pending;
  }
}
