import { percentile, type Sample } from './load.js';

/** What the clients saw in one window of an experiment. */
export interface PhaseStats {
  phase: string;
  requests: number;
  /** 2xx. */
  ok: number;
  /** Refused at once by design: 429/503 with Retry-After. */
  shed: number;
  /** Anything else: 5xx without Retry-After, 502/504, timeouts, closed connections. */
  failed: number;
  byOutcome: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
}

/** The requests that started in [from, to). */
export function phaseStats(samples: readonly Sample[], phase: string, from: number, to: number): PhaseStats {
  const chosen = samples.filter((s) => s.at >= from && s.at < to);
  const byOutcome: Record<string, number> = {};
  for (const s of chosen) byOutcome[s.outcome] = (byOutcome[s.outcome] ?? 0) + 1;
  const ms = chosen.map((s) => s.ms);
  return {
    phase,
    requests: chosen.length,
    ok: chosen.filter((s) => s.ok).length,
    shed: chosen.filter((s) => s.shed).length,
    failed: chosen.filter((s) => !s.ok && !s.shed).length,
    byOutcome,
    p50Ms: percentile(ms, 50),
    p99Ms: percentile(ms, 99),
  };
}

/**
 * How long after the fault was cleared (`clearedAt`, epoch ms; the injection itself for a kill)
 * the last request that was not a 2xx ended; 0 when none did after it.
 */
export function recoveryMs(samples: readonly Sample[], faultAt: number, clearedAt: number): number {
  let last = clearedAt;
  for (const s of samples) if (!s.ok && s.at >= faultAt) last = Math.max(last, s.at + s.ms);
  return Math.round(last - clearedAt);
}

const num = (x: number) => (Number.isFinite(x) ? String(Math.round(x)) : '-');

/** A phase table in Markdown. */
export function phaseTable(phases: readonly PhaseStats[]): string[] {
  const lines = [
    '| window | requests | 2xx | shed (429/503 + Retry-After) | failed | p50 ms | p99 ms | outcomes |',
    '| ------ | -------: | --: | ---------------------------: | -----: | -----: | -----: | -------- |',
  ];
  for (const p of phases) {
    const outcomes = Object.entries(p.byOutcome)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ');
    lines.push(
      `| ${p.phase} | ${p.requests} | ${p.ok} | ${p.shed} | ${p.failed} | ${num(p.p50Ms)} | ${num(p.p99Ms)} | ${outcomes} |`,
    );
  }
  return lines;
}
