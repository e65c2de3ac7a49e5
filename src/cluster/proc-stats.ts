import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU times (USER_HZ; 100 on every Linux seen in practice). */
const TICKS_PER_S = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
const PAGE_BYTES = (() => {
  try {
    return Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim()) || 4096;
  } catch {
    return 4096;
  }
})();

export interface ProcStat {
  /** User + system CPU time the process has used, in seconds. */
  cpuSeconds: number;
  rssBytes: number;
  ppid: number;
}

/** One process's CPU time and resident memory from /proc/<pid>/stat; undefined when it is gone. */
export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Fields from 3 on: state(3) ppid(4) … utime(14) stime(15) … rss(24).
  const at = (n: number) => Number(fields[n - 3]);
  return { ppid: at(4), cpuSeconds: (at(14) + at(15)) / TICKS_PER_S, rssBytes: at(24) * PAGE_BYTES };
}

/** Pids whose parent is `ppid` (e.g. nginx's workers), from /proc. */
export function childPids(ppid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (readProcStat(Number(entry))?.ppid === ppid) out.push(Number(entry));
  }
  return out;
}

export interface CpuSample {
  /** Percent of one core since the previous sample (100 = one core busy). */
  cpuPercent: number;
  rssBytes: number;
}

/**
 * CPU % per process between successive calls, from the OS's own accounting (not the process's
 * word): a stuck or busy process is measured the same way as a healthy one.
 */
export class CpuSampler {
  private last = new Map<number, { cpuSeconds: number; at: number }>();

  sample(pid: number, now = performance.now()): CpuSample | undefined {
    const stat = readProcStat(pid);
    if (!stat) {
      this.last.delete(pid);
      return undefined;
    }
    const prev = this.last.get(pid);
    this.last.set(pid, { cpuSeconds: stat.cpuSeconds, at: now });
    const elapsedS = prev ? (now - prev.at) / 1000 : 0;
    const cpuPercent = prev && elapsedS > 0 ? ((stat.cpuSeconds - prev.cpuSeconds) / elapsedS) * 100 : 0;
    return { cpuPercent: Math.max(0, cpuPercent), rssBytes: stat.rssBytes };
  }

  /** Forgets processes no longer sampled. */
  retain(pids: Iterable<number>): void {
    const keep = new Set(pids);
    for (const pid of this.last.keys()) if (!keep.has(pid)) this.last.delete(pid);
  }
}
