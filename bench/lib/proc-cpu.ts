import { readdirSync, readFileSync } from 'node:fs';

/** Linux clock ticks per second for /proc/<pid>/stat times (getconf CLK_TCK; 100 on Linux). */
const TICKS_PER_S = 100;

function stat(pid: number): { ppid: number; cpuMs: number } | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces; fields after it are space-separated.
    const fields = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(fields[1]);
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return { ppid, cpuMs: ((utime + stime) * 1000) / TICKS_PER_S };
  } catch {
    return undefined; // the process is gone
  }
}

/** CPU time (user + system, ms) used so far by each root process and all its descendants. */
export function treeCpuMs(roots: Record<string, number[]>): Record<string, number> {
  const parents = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = stat(Number(entry));
    if (!s) continue;
    parents.set(Number(entry), s.ppid);
    cpu.set(Number(entry), s.cpuMs);
  }
  const out: Record<string, number> = {};
  for (const [name, pids] of Object.entries(roots)) {
    const members = new Set(pids);
    // Descendants (nginx workers): add children of members until nothing changes.
    for (let grew = true; grew;) {
      grew = false;
      for (const [pid, ppid] of parents) {
        if (!members.has(pid) && members.has(ppid)) {
          members.add(pid);
          grew = true;
        }
      }
    }
    out[name] = [...members].reduce((sum, pid) => sum + (cpu.get(pid) ?? 0), 0);
  }
  return out;
}
