import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What `skillserve up` records so that `down` and `status` from another shell can find it. */
export interface ClusterState {
  supervisorPid: number;
  startedAt: string;
  endpoint: string;
  prometheusUrl?: string;
  alertmanagerUrl?: string;
  /** The supervisor's own /metrics port (scaling). */
  adminPort?: number;
  processes: { name: string; pid?: number; adminPort?: number }[];
}

export function statePath(runDir: string): string {
  return join(runDir, 'cluster.json');
}

/** Written aside and renamed into place, so a reader (`status`, `down`, a load test) never sees half a file. */
export function writeState(runDir: string, state: ClusterState): void {
  const path = statePath(runDir);
  writeFileSync(`${path}.${process.pid}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(`${path}.${process.pid}.tmp`, path);
}

export function readState(runDir: string): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(statePath(runDir), 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

export function clearState(runDir: string): void {
  rmSync(statePath(runDir), { force: true });
}

export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops the cluster recorded in `runDir`: SIGTERM to the supervisor, which stops its children;
 * whatever is still alive after `timeoutMs` is killed.
 */
export async function stopCluster(runDir: string, timeoutMs: number): Promise<'stopped' | 'not-running'> {
  const state = readState(runDir);
  if (!state) return 'not-running';
  const pids = [state.supervisorPid, ...state.processes.map((p) => p.pid)].filter((p): p is number => !!p);
  if (!pids.some(isAlive)) {
    clearState(runDir);
    return 'not-running';
  }
  if (isAlive(state.supervisorPid)) {
    process.kill(state.supervisorPid, 'SIGTERM');
  } else {
    // The supervisor died without cleaning up: ask what it left behind to stop (SIGQUIT is
    // nginx's graceful stop).
    for (const p of state.processes) {
      if (isAlive(p.pid)) process.kill(p.pid!, p.name === 'nginx' ? 'SIGQUIT' : 'SIGTERM');
    }
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && pids.some(isAlive)) await new Promise((r) => setTimeout(r, 100));
  for (const pid of pids.filter(isAlive)) process.kill(pid, 'SIGKILL');
  clearState(runDir);
  return 'stopped';
}
