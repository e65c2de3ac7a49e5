import type { ChildProcess } from 'node:child_process';

/** Every benchmark traffic stays on loopback; 127.0.0.1 rather than localhost avoids the IPv6 fallback. */
export const HOST = '127.0.0.1';

/** Children spawned by the bench, so an unexpected exit can still kill them (see killAllSync). */
const spawned = new Set<ChildProcess>();

export function track(child: ChildProcess): ChildProcess {
  spawned.add(child);
  child.once('exit', () => spawned.delete(child));
  return child;
}

/** Asks `child` to stop with `signal`, and kills it if it is still there after `timeoutMs`. */
export async function stopChild(
  child: ChildProcess,
  signal: NodeJS.Signals = 'SIGTERM',
  timeoutMs = 5_000,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

/** Last resort on process exit (an uncaught error, a second Ctrl-C): nothing we started outlives us. */
export function killAllSync(): void {
  for (const child of spawned) child.kill('SIGKILL');
}
