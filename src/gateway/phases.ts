import { performance } from 'node:perf_hooks';
import type { Histogram } from 'prom-client';

/**
 * The phases of a request's way through the cluster, as `Server-Timing` names them and
 * `skillserve_request_phase_seconds` counts them:
 *
 * - auth: from the gateway receiving the request to the infer service starting (key, body);
 * - admit: rate limit and cache read (one Redis round trip, or none for an in-process hit);
 * - enqueue: depth check and priority, up to handing the job to the queue;
 * - queue: from the job being added to its dispatcher sending it to the skill (batching included);
 * - skill: the dispatcher's gRPC round trip (the model's own compute is in `compute`, inside it);
 * - return: from the skill's answer back to the gateway (completion, pub/sub, the waiter);
 * - total: from the gateway receiving the request to its answer being ready.
 *
 * `direct` replaces queue, skill and return when the gateway calls the skill itself.
 */
export const PHASES = ['auth', 'admit', 'enqueue', 'queue', 'skill', 'compute', 'return', 'direct', 'total'] as const;
export type Phase = (typeof PHASES)[number];

/** Times the phases of one request, each from the previous mark. */
export class PhaseClock {
  readonly ms: Partial<Record<Phase, number>> = {};
  private last: number;

  constructor(private readonly start = performance.now()) {
    this.last = start;
  }

  /** Ends `phase` now: it took the time since the previous mark. */
  mark(phase: Phase): void {
    const now = performance.now();
    this.ms[phase] = (this.ms[phase] ?? 0) + (now - this.last);
    this.last = now;
  }

  /** Records a phase measured elsewhere (by the dispatcher) without moving the mark. */
  set(phase: Phase, ms: number): void {
    this.ms[phase] = ms;
  }

  /**
   * Ends the request: `total`, and `return` as what the total leaves after the other phases
   * (the time between the skill's answer and the gateway resuming), when the job was queued.
   */
  finish(): Partial<Record<Phase, number>> {
    const total = performance.now() - this.start;
    const { ms } = this;
    if (ms.queue !== undefined && ms.skill !== undefined) {
      const known = (ms.auth ?? 0) + (ms.admit ?? 0) + (ms.enqueue ?? 0) + ms.queue + ms.skill;
      ms.return = Math.max(0, total - known);
    }
    ms.total = total;
    return ms;
  }
}

/** `Server-Timing: auth;dur=0.12, admit;dur=0.4, …` (ms, 2 decimals), in {@link PHASES} order. */
export function serverTiming(ms: Partial<Record<Phase, number>>): string {
  return PHASES.filter((p) => ms[p] !== undefined)
    .map((p) => `${p};dur=${ms[p]!.toFixed(2)}`)
    .join(', ');
}

/** Counts each phase of a request in the phase histogram (seconds). */
export function observePhases(histogram: Histogram<'phase'>, ms: Partial<Record<Phase, number>>): void {
  for (const p of PHASES) if (ms[p] !== undefined) histogram.observe({ phase: p }, ms[p]! / 1000);
}
