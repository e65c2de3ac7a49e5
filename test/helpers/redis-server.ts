import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { freePorts } from './env.js';

/** The project's Redis configuration (AOF on), as scripts/services.sh starts the machine's Redis. */
export const redisConfPath = fileURLToPath(new URL('../../redis/redis.conf', import.meta.url));

export interface OwnRedisOptions {
  /**
   * `true` (default): the project's redis/redis.conf, AOF on, so a restart on the same data
   * keeps every acknowledged write. `false`: no persistence at all (what a restart then loses).
   */
  persistent?: boolean;
  /** Flags for redis-server after its port and address (e.g. a deployment's own); they replace the above. */
  args?: string[];
  /** Required password (`--requirepass`); the readiness check logs in with it. */
  password?: string;
}

/**
 * A real redis-server of the test's own, on a free port, that the test may kill, freeze and
 * restart on the same data directory — never the machine's Redis, which other tests use.
 */
export class OwnRedis {
  private child?: ChildProcess;
  private paused = false;
  private readonly dir = mkdtempSync(join(tmpdir(), 'skillserve-redis-'));

  private constructor(
    readonly port: number,
    private readonly opts: OwnRedisOptions,
  ) {}

  static async start(opts: OwnRedisOptions = {}): Promise<OwnRedis> {
    const [port] = await freePorts(1);
    const r = new OwnRedis(port!, opts);
    await r.start();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server (again, after {@link stop}: same port, same data directory). */
  async start(): Promise<void> {
    const { args, persistent = true, password } = this.opts;
    // A configuration file must come first; command-line flags then override it.
    const conf = !args && persistent ? [redisConfPath] : [];
    const flags = args ?? (persistent ? [] : ['--save', '', '--appendonly', 'no']);
    this.child = spawn(
      'redis-server',
      [
        ...conf,
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        ...flags,
        ...(password ? ['--requirepass', password] : []),
      ],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const client = new Redis(this.url, {
        lazyConnect: true,
        retryStrategy: () => null,
        maxRetriesPerRequest: 0,
        ...(password ? { password } : {}),
      });
      client.on('error', () => undefined);
      try {
        await client.connect();
        // Answers LOADING (an error) until the AOF is read.
        await client.ping();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      } finally {
        client.disconnect();
      }
    }
    throw new Error(`redis-server on ${this.port} did not start`);
  }

  /** Kills the server outright (SIGKILL), as a crash would. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    this.paused = false;
  }

  /**
   * Freezes the server (SIGSTOP), as a hung host: connections stay open, nothing answers, so
   * nothing fails fast. {@link resume} thaws it.
   */
  pause(): void {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    const child = this.child;
    if (!this.paused || !child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGCONT');
    this.paused = false;
  }

  async destroy(): Promise<void> {
    this.resume();
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
