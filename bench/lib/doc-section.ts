import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** docs/BENCHMARKS.md, where every benchmark writes its own marked section. */
export const benchmarksPath = fileURLToPath(new URL('../../docs/BENCHMARKS.md', import.meta.url));

const HEADER = `# Benchmarks

Figures written by the benchmarks themselves; each section names the command that reproduces it.
`;

/**
 * Replaces the section between `<!-- bench:<name>:start -->` and `<!-- bench:<name>:end -->`
 * (appending it when absent, creating the file when missing) and keeps the rest of the file.
 */
export function writeSection(name: string, body: string, path = benchmarksPath): void {
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const section = `${start}\n${body.trim()}\n${end}`;
  const current = existsSync(path) ? readFileSync(path, 'utf8') : HEADER;
  const from = current.indexOf(start);
  const to = current.indexOf(end);
  const next =
    from >= 0 && to > from
      ? current.slice(0, from) + section + current.slice(to + end.length)
      : `${current.trimEnd()}\n\n${section}\n`;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, next);
}

/** One line naming the machine a figure was measured on. */
export function machine(): string {
  const cpu = cpus();
  return `${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${cpu.length} cores, Linux ${release()}, Node ${process.version}`;
}

/** The commit being measured; uncommitted changes in src/ are named, since they are measured too. */
export function revision(): string {
  const git = (...args: string[]) => spawnSync('git', args, { encoding: 'utf8' }).stdout?.trim() ?? '';
  const sha = git('rev-parse', '--short', 'HEAD') || 'an unknown commit';
  return git('status', '--porcelain', '--', 'src') ? `${sha} (with uncommitted changes in src/)` : sha;
}

/** A figure with `d` decimals, or n/a when there is none. */
export const fixed = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
