import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePorts } from './env.js';

const run = promisify(execFile);

/** A throw-away Postgres server of a test's own, which the test may stop and start at will. */
export interface PostgresInstance {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  url: string;
  port: number;
  /** Starts the server again after {@link stop} (same data, same port). */
  start(): Promise<void>;
  /** `immediate` is a crash as far as clients can tell: no goodbye, in-flight work is cut. */
  stop(mode?: 'immediate' | 'fast'): Promise<void>;
  /**
   * Freezes every process of the server (SIGSTOP): connections stay open but nothing answers,
   * as when a database host hangs. {@link resume} thaws it.
   */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Stops the server and deletes its data directory. */
  destroy(): Promise<void>;
}

/** The newest installed server's bin directory (Debian keeps them in /usr/lib/postgresql/<v>/bin). */
function binDir(): string {
  const fromEnv = process.env.PG_BIN_DIR;
  if (fromEnv) return fromEnv;
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base)
    ? readdirSync(base)
        .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!versions[0]) throw new Error(`no Postgres server binaries under ${base}; set PG_BIN_DIR`);
  return join(base, versions[0], 'bin');
}

/**
 * Starts a private Postgres (initdb in a temp directory, a free port, its own socket directory),
 * so a test can stop and restart a database without touching the machine's Postgres that other
 * tests use. initdb refuses to run as root, so as root the server runs as the `postgres` user.
 */
export async function startPostgresInstance(): Promise<PostgresInstance> {
  const bin = binDir();
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'skillserve-pg-'));
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const exec = (tool: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]) : run(join(bin, tool), args);
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  const [port] = await freePorts(1);
  const withLog = async (what: string, p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      const tail = existsSync(log) ? readFileSync(log, 'utf8').slice(-2_000) : '';
      throw new Error(`postgres instance: ${what} failed: ${(err as Error).message}\n${tail}`, { cause: err });
    }
  };

  // UTF8 explicitly: with the C locale initdb would otherwise pick SQL_ASCII.
  await withLog(
    'initdb',
    exec('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync']),
  );
  const options = [`-p ${port}`, `-k ${dir}`, '-c listen_addresses=127.0.0.1', '-c fsync=off', '-c max_connections=50'];
  const start = () =>
    withLog('start', exec('pg_ctl', ['-D', data, '-o', options.join(' '), '-l', log, '-w', '-t', '60', 'start']));
  const stop = (mode: 'immediate' | 'fast' = 'immediate') =>
    withLog('stop', exec('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']));
  /** The postmaster (first line of postmaster.pid) and its children, by pid: only this instance's. */
  const pids = async (): Promise<number[]> => {
    const master = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const { stdout } = await run('ps', ['-o', 'pid=', '--ppid', String(master)]).catch(() => ({ stdout: '' }));
    return [master, ...stdout.split(/\s+/).filter(Boolean).map(Number)];
  };
  const signal = async (sig: NodeJS.Signals) => {
    for (const pid of await pids()) {
      try {
        process.kill(pid, sig);
      } catch {
        // A backend that exited meanwhile.
      }
    }
  };
  let paused = false;
  await start();
  let destroyed = false;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port: port!,
    start,
    stop,
    async pause() {
      paused = true;
      await signal('SIGSTOP');
    },
    async resume() {
      paused = false;
      await signal('SIGCONT');
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      if (paused) await signal('SIGCONT').catch(() => undefined);
      await stop('immediate').catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
