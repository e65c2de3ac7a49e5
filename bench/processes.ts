import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** Every benchmark traffic stays on loopback; 127.0.0.1 rather than localhost avoids the IPv6 fallback. */
export const HOST = '127.0.0.1';

/** A port that was free a moment ago: bind port 0, read what the kernel gave, release it. */
export function freePort(port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, HOST, () => {
      const address = server.address();
      const got = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(got));
    });
  });
}

/**
 * Two consecutive free ports, returning the first: the cluster's gateways listen on
 * GATEWAY_BASE_PORT + i, so their ports must be adjacent.
 */
export async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = await freePort();
    if (base >= 65535) continue;
    const next = await freePort(base + 1).catch(() => 0);
    if (next === base + 1) return base;
  }
  throw new Error('could not find two adjacent free ports on 127.0.0.1');
}

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
