import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { machine, revision } from '../../bench/lib/doc-section.js';
import { findNginx } from '../../src/cluster/preflight.js';
import type { Config } from '../../src/config/index.js';
import type { Percentiles, Summary } from './stats.js';

/** Milliseconds as people read them: 2 decimals below 10, 1 below 100. */
export const ms = (v: number) =>
  Number.isFinite(v) ? `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ms` : 'n/a';
export const num = (v: number, d = 0) =>
  Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : 'n/a';
export const pct = (v: number, d = 1) => (Number.isFinite(v) ? `${(v * 100).toFixed(d)} %` : 'n/a');

export function percentileRow(label: string, p: Percentiles): string {
  return `| ${label} | ${num(p.count)} | ${ms(p.p50)} | ${ms(p.p95)} | ${ms(p.p99)} |`;
}

export function latencyTable(s: Summary): string {
  return [
    '| requests | answered | p50 | p95 | p99 |',
    '|---|--:|--:|--:|--:|',
    percentileRow('all (answered)', s.overall),
    percentileRow('cache hits (nlp, onnx)', s.hit),
    percentileRow('cache misses (nlp, onnx)', s.miss),
    percentileRow('memory and jobs (never cached)', s.uncached),
    ...Object.entries(s.byName)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, p]) => percentileRow(`&nbsp;&nbsp;${name}`, p)),
  ].join('\n');
}

export function errorLines(s: Summary): string {
  const entries = Object.entries(s.errors).sort((a, b) => b[1] - a[1]);
  if (entries.length === 0) return 'Errors: none.';
  return ['Errors by kind:', '', ...entries.map(([kind, n]) => `- ${kind}: ${num(n)}`)].join('\n');
}

/** The first line of `bin arg`'s output (nginx prints its version on stderr). */
function versionOf(bin: string, arg: string): string {
  const r = spawnSync(bin, [arg], { encoding: 'utf8' });
  return (
    `${r.stderr ?? ''}${r.stdout ?? ''}`
      .trim()
      .split('\n')[0]
      ?.replace(/^nginx version: /, '') || bin
  );
}

export interface RunContext {
  startedAt: Date;
  loadBefore: number;
}

export function runContext(): RunContext {
  return { startedAt: new Date(), loadBefore: loadavg()[0] ?? NaN };
}

/** Date, commit, command, machine and versions: the lines every load-test section opens with. */
export function provenance(ctx: RunContext, command: string, config: Config, generator: string): string {
  return [
    `Measured ${ctx.startedAt.toISOString().replace(/\.\d+Z$/, 'Z')} at ${revision()} with:`,
    '',
    '```',
    command,
    '```',
    '',
    `Machine: ${machine()}, ${versionOf(findNginx(config), '-v')}, ${generator}; 1-minute load average ` +
      `${ctx.loadBefore.toFixed(2)} when the run started, ${(loadavg()[0] ?? NaN).toFixed(2)} when it ended.`,
  ].join('\n');
}

/** Says how busy the rest of the machine was: on a shared machine, other helpers' work. */
export function sharedNote(otherCores: number, cores: number): string {
  const shared = otherCores > 0.15;
  return (
    `Other work on the machine (every process but the cluster, its monitoring, the generator, Redis and Postgres, from /proc) used ` +
    `${otherCores.toFixed(2)} of its ${cores} cores on average` +
    (shared
      ? ": **measured on a shared machine** (other engineers' builds and tests ran meanwhile); figures on a quiet machine will differ."
      : '.')
  );
}
