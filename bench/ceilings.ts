import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderNginxConfig } from '../src/cluster/nginx.js';
import { waitReady } from '../src/cluster/supervisor.js';
import { freePorts } from '../test/helpers/env.js';
import { HOST, stopChild, track } from './lib/processes.js';

export type CeilingKind = 'express' | 'http';

export interface Stack {
  /** The URL wrk loads, through nginx. */
  url: string;
  /** Process ids by part, for CPU time per request: `node` (the upstreams), `nginx` (its master; workers are its children). */
  pids(): { node: number[]; nginx: number[] };
  stop(): Promise<void>;
}

const serverPath = fileURLToPath(new URL('./ceiling-server.ts', import.meta.url));
/** Two upstreams, as the real cluster has two gateways. */
const UPSTREAMS = 2;

/**
 * nginx in front of two constant-JSON servers of `kind`, rendered from the cluster's own
 * template (least_conn, upstream keepalive), so the only difference from the infer path is
 * what the upstreams do.
 */
export async function startCeiling(
  kind: CeilingKind,
  opts: { nginxBin: string; workDir: string; ratePerIp: number; burstPerIp: number },
): Promise<Stack> {
  const servers: ChildProcess[] = [];
  let nginx: ChildProcess | undefined;
  const stop = async () => {
    // nginx first, as in the cluster: it stops taking traffic before its upstreams go.
    // SIGQUIT is nginx's graceful shutdown.
    if (nginx) await stopChild(nginx, 'SIGQUIT');
    await Promise.all(servers.map((child) => stopChild(child)));
  };
  try {
    const ports: number[] = [];
    for (let i = 0; i < UPSTREAMS; i++) {
      const { child, port } = await spawnServer(kind);
      servers.push(child);
      ports.push(port);
    }
    const prefix = join(opts.workDir, `nginx-${kind}`);
    for (const dir of [join(prefix, 'logs'), join(prefix, 'tmp')]) mkdirSync(dir, { recursive: true });
    const [listenPort, statusPort] = (await freePorts(2)) as [number, number];
    const conf = join(prefix, 'nginx.conf');
    writeFileSync(
      conf,
      renderNginxConfig({
        prefix,
        listen: { host: HOST, port: listenPort },
        status: { host: HOST, port: statusPort },
        gateways: ports.map((port) => ({ host: HOST, port })),
        clientMaxBodyBytes: 1024 * 1024,
        proxyReadTimeoutS: 20,
        // The cluster's per-IP limit as the bench configures it: same nginx work, never a 429.
        ratePerIp: opts.ratePerIp,
        burstPerIp: opts.burstPerIp,
      }),
    );
    nginx = track(
      spawn(opts.nginxBin, ['-p', prefix, '-c', conf, '-e', join(prefix, 'logs', 'error.log'), '-g', 'daemon off;'], {
        stdio: ['ignore', 'inherit', 'inherit'],
      }),
    );
    const url = `http://${HOST}:${listenPort}/`;
    await waitReady(url, Date.now() + 15_000);
    const alive = (children: (ChildProcess | undefined)[]) =>
      children.flatMap((c) => (c?.pid !== undefined && c.exitCode === null ? [c.pid] : []));
    return { url, stop, pids: () => ({ node: alive(servers), nginx: alive([nginx]) }) };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Starts one ceiling-server child and waits for the port it bound. */
function spawnServer(kind: CeilingKind): Promise<{ child: ChildProcess; port: number }> {
  // process.execArgv carries tsx's loader, so the child can run the .ts file directly.
  const child = track(
    spawn(process.execPath, [...process.execArgv, serverPath, kind], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ceiling server "${kind}" did not report its port within 15 s`));
    }, 15_000);
    child.once('message', (msg: { port?: number }) => {
      clearTimeout(timer);
      if (typeof msg.port === 'number') resolve({ child, port: msg.port });
      else reject(new Error(`ceiling server "${kind}" sent ${JSON.stringify(msg)}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`ceiling server "${kind}" exited before listening (${signal ?? `code ${code}`})`));
    });
  });
}
