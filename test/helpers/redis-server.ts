import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePorts } from './env.js';

/** A real redis-server of the test's own, on a free port, that the test may stop and restart. */
export class OwnRedis {
  private child?: ChildProcess;
  private readonly dir = mkdtempSync(join(tmpdir(), 'skillserve-redis-'));

  private constructor(
    readonly port: number,
    private readonly args: string[],
    private readonly password?: string,
  ) {}

  /**
   * `args` go to redis-server after its port and address (e.g. a deployment's own flags); with
   * `password` it also requires it (`--requirepass`), and the readiness check logs in.
   */
  static async start(opts: { args?: string[]; password?: string } = {}): Promise<OwnRedis> {
    const [port] = await freePorts(1);
    const r = new OwnRedis(port!, opts.args ?? ['--save', '', '--appendonly', 'no'], opts.password);
    await r.start();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        ...this.args,
        ...(this.password ? ['--requirepass', this.password] : []),
      ],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const client = new Redis(this.url, {
        lazyConnect: true,
        retryStrategy: () => null,
        maxRetriesPerRequest: 0,
        ...(this.password ? { password: this.password } : {}),
      });
      client.on('error', () => undefined);
      try {
        await client.connect();
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

  /** Kills the server outright, as a crash would. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
