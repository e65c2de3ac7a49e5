import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { eventually, freePorts } from './env.js';

const run = promisify(execFile);

interface Node {
  port: number;
  child: ChildProcess;
}

/** One line of CLUSTER NODES, as far as the tests need it. */
export interface ClusterNodeView {
  id: string;
  port: number;
  role: 'master' | 'replica';
  /** The master's id, for a replica. */
  masterId?: string;
  /** `from-to` slot ranges a master serves. */
  slots: [number, number][];
}

/**
 * A real Redis Cluster of the test's own: `masters` masters with one replica each, from
 * redis-server processes on 127.0.0.1 (cluster-enabled, AOF on) in a temporary directory, made
 * with `redis-cli --cluster create`. Data and bus ports both come from freePorts (the bus port
 * is set with cluster-port, not left at port + 10000), so it runs beside other tests. Never the
 * machine's Redis. Not to be confused with own-redis-cluster.ts: a skillserve cluster on one
 * Redis of the test's own.
 */
export class RedisClusterServers {
  private readonly nodes: Node[] = [];
  private readonly dir = mkdtempSync(join(tmpdir(), 'skillserve-redis-cluster-'));

  private constructor() {}

  static async start(opts: { masters?: number } = {}): Promise<RedisClusterServers> {
    const masters = opts.masters ?? 3;
    const count = masters * 2;
    const servers = new RedisClusterServers();
    try {
      const ports = await freePorts(count * 2);
      await Promise.all(ports.slice(0, count).map((port, i) => servers.startNode(port, ports[count + i]!)));
      await run('redis-cli', [
        '--cluster',
        'create',
        ...servers.nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        '1',
        '--cluster-yes',
      ]);
      await servers.waitHealthy(masters);
      return servers;
    } catch (err) {
      await servers.destroy();
      throw err;
    }
  }

  /** `host:port,…` of every node: REDIS_CLUSTER_NODES. */
  get seeds(): string {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  }

  /** CLUSTER NODES as one node sees it. */
  async view(port = this.nodes[0]!.port): Promise<ClusterNodeView[]> {
    const text = String(await this.command(port, 'CLUSTER', 'NODES'));
    return text
      .trim()
      .split('\n')
      .map((line) => {
        const [id, addr, flags, masterId, , , , , ...slots] = line.split(' ');
        return {
          id: id!,
          port: Number(/:(\d+)@/.exec(addr!)?.[1]),
          role: flags!.includes('master') ? 'master' : 'replica',
          ...(masterId !== '-' ? { masterId } : {}),
          slots: slots
            .filter((s) => /^\d/.test(s))
            .map((s) => s.split('-').map(Number) as [number, number])
            .map(([a, b]) => [a, b ?? a] as [number, number]),
        } satisfies ClusterNodeView;
      });
  }

  /** The master serving `slot`, and its replica. */
  async shard(slot: number): Promise<{ master: ClusterNodeView; replica: ClusterNodeView }> {
    const view = await this.view();
    const master = view.find((n) => n.role === 'master' && n.slots.some(([a, b]) => slot >= a && slot <= b));
    const replica = view.find((n) => n.role === 'replica' && n.masterId === master?.id);
    if (!master || !replica) throw new Error(`no master with a replica serves slot ${slot}`);
    return { master, replica };
  }

  /**
   * A manual failover of the master serving `slot`: `CLUSTER FAILOVER` on its replica, which
   * takes over once it has the master's every write. Resolves when every node sees the new
   * master and the cluster is healthy again; returns the two ports.
   */
  async failover(slot: number): Promise<{ from: number; to: number }> {
    const { master, replica } = await this.shard(slot);
    await this.command(replica.port, 'CLUSTER', 'FAILOVER');
    await eventually(
      async () => {
        for (const n of this.nodes) {
          const promoted = (await this.view(n.port)).find((v) => v.id === replica.id);
          if (promoted?.role !== 'master') throw new Error(`${n.port} does not see ${replica.port} as master yet`);
        }
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    await this.waitHealthy(this.nodes.length / 2);
    return { from: master.port, to: replica.port };
  }

  async destroy(): Promise<void> {
    await Promise.all(
      this.nodes.map(async ({ child }) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async startNode(port: number, busPort: number): Promise<void> {
    const dir = join(this.dir, String(port));
    mkdirSync(dir);
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--cluster-enabled',
        'yes',
        '--cluster-port',
        String(busPort),
        '--cluster-config-file',
        'nodes.conf',
        // A failed master is noticed within 2 s (the default 15 s only lengthens a test).
        '--cluster-node-timeout',
        '2000',
        '--appendonly',
        'yes',
        '--save',
        '',
        // BullMQ needs it, as on the single Redis (redis/redis.conf).
        '--maxmemory-policy',
        'noeviction',
      ],
      { stdio: 'ignore' },
    );
    this.nodes.push({ port, child });
    await eventually(async () => void (await this.command(port, 'PING')), { timeoutMs: 20_000, intervalMs: 50 });
  }

  /** Until every node says cluster_state:ok, all slots are served and `masters` masters each have a replica. */
  private async waitHealthy(masters: number): Promise<void> {
    await eventually(
      async () => {
        for (const n of this.nodes) {
          const info = String(await this.command(n.port, 'CLUSTER', 'INFO'));
          if (!/cluster_state:ok/.test(info) || !/cluster_slots_ok:16384/.test(info))
            throw new Error(`node ${n.port}: ${info.split('\n').slice(0, 3).join(' ')}`);
          const view = await this.view(n.port);
          const ms = view.filter((v) => v.role === 'master' && v.slots.length > 0);
          if (ms.length !== masters || !ms.every((m) => view.some((v) => v.masterId === m.id)))
            throw new Error(`node ${n.port} does not see ${masters} masters with replicas yet`);
        }
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
  }

  private async command(port: number, ...args: string[]): Promise<unknown> {
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return await client.call(args[0]!, ...args.slice(1));
    } finally {
      client.disconnect();
    }
  }
}
