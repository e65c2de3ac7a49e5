import { readFileSync } from 'node:fs';
import { freemem } from 'node:os';

/** cgroup v2, then v1: the limit and usage of the container this process runs in, if any. */
const CGROUP_FILES: [limit: string, usage: string][] = [
  ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory.current'],
  ['/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/memory/memory.usage_in_bytes'],
];

/** cgroup v1 reports "no limit" as a huge number rather than "max". */
const NO_LIMIT = 2 ** 60;

function readNumber(path: string): number | undefined {
  try {
    const text = readFileSync(path, 'utf8').trim();
    const n = Number(text);
    return text === 'max' || !Number.isFinite(n) || n >= NO_LIMIT ? undefined : n;
  } catch {
    return undefined;
  }
}

/**
 * Bytes this process could still allocate: the machine's available memory, or the room left
 * under the container's memory limit when that is smaller (a container sees the host's
 * freemem, which says nothing about its own limit).
 */
export function freeMemoryBytes(): number {
  const machine = freemem();
  for (const [limitPath, usagePath] of CGROUP_FILES) {
    const limit = readNumber(limitPath);
    const usage = readNumber(usagePath);
    if (limit !== undefined && usage !== undefined) return Math.max(0, Math.min(machine, limit - usage));
  }
  return machine;
}
