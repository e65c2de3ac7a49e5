import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { track } from './lib/processes.js';

/** A redis-server of the bench's own (no persistence) on `port`: its CPU and commands are the run's alone. */
export async function ownRedis(port: number): Promise<{ url: string; pid: number; child: ChildProcess }> {
  const dir = mkdtempSync(join(tmpdir(), 'skillserve-path-redis-'));
  const child = track(
    spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    ),
  );
  child.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const r = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    r.on('error', () => undefined);
    try {
      await r.connect();
      await r.ping();
      r.disconnect();
      return { url, pid: child.pid!, child };
    } catch {
      r.disconnect();
      await new Promise((res) => setTimeout(res, 100));
    }
  }
  throw new Error(`redis-server on port ${port} did not start`);
}

/** INFO commandstats: calls so far by command. */
export async function commandStats(url: string): Promise<Map<string, number>> {
  const r = new Redis(url);
  try {
    const text = await r.info('commandstats');
    const out = new Map<string, number>();
    for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(m[1]!, Number(m[2]));
    return out;
  } finally {
    r.disconnect();
  }
}
