import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopChild, track } from '../../bench/lib/processes.js';
import { freePorts } from '../../test/helpers/env.js';
import { parseSampleLines, type Sample } from './stats.js';

export const locustfile = fileURLToPath(new URL('../locustfile.py', import.meta.url));

/** `locust` from PATH or Debian's /usr/bin; undefined when neither is there. */
export function findLocust(): string | undefined {
  for (const candidate of ['locust', '/usr/bin/locust']) {
    const r = spawnSync(candidate, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return candidate;
  }
  return undefined;
}

/** `locust --version`; Debian's build prints no number, so its package's version then. */
export function locustVersion(bin: string): string {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  const line = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] ?? '';
  if (/\d/.test(line)) return line;
  const deb = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'python3-locust'], { encoding: 'utf8' });
  return deb.status === 0 && deb.stdout ? `locust ${deb.stdout.trim()} (python3-locust)` : 'locust';
}

export interface LocustRun {
  bin: string;
  host: string;
  profile: string;
  users: number;
  spawnRate: number;
  durationS: number;
  keysFile: string;
  /** Where Locust writes its CSVs, HTML report and our per-request samples. */
  outDir: string;
  /** 0: one process. N: a master and N worker processes. */
  workers: number;
  env?: Record<string, string>;
  print: (line: string) => void;
}

export interface LocustResult {
  exitCode: number;
  samples: Sample[];
  /** Process ids of every Locust process, for their CPU (read while they run). */
  pids: number[];
  htmlReport: string;
}

/**
 * Runs Locust headless over loadtest/locustfile.py: one process, or a master and `workers`
 * workers on this machine. Locust's own CSVs and HTML report go to `outDir`; so do the
 * per-request samples the locustfile writes, which are returned, times relative to `originMs`.
 */
export async function runLocust(
  o: LocustRun,
  originMs: number,
  onStart: (pids: () => number[]) => void,
): Promise<LocustResult> {
  rmSync(o.outDir, { recursive: true, force: true });
  mkdirSync(o.outDir, { recursive: true });
  const samplesDir = join(o.outDir, 'samples');
  const htmlReport = join(o.outDir, 'report.html');
  const env = {
    ...process.env,
    ...o.env,
    LOADTEST_KEYS: o.keysFile,
    LOADTEST_PROFILE: o.profile,
    LOADTEST_SAMPLES: samplesDir,
    LOADTEST_LOCUST_WORKERS: String(Math.max(1, o.workers)),
    PYTHONUNBUFFERED: '1',
  };
  const common = ['-f', locustfile, '--host', o.host, '--loglevel', 'WARNING'];
  const run = [
    '--headless',
    '-u',
    String(o.users),
    '-r',
    String(o.spawnRate),
    '-t',
    `${o.durationS}s`,
    '--stop-timeout',
    '15',
    '--csv',
    join(o.outDir, 'locust'),
    '--html',
    htmlReport,
    '--only-summary',
  ];
  const children: ChildProcess[] = [];
  const start = (args: string[], name: string) => {
    const child = track(spawn(o.bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
    const relay = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) if (line.trim()) o.print(`  ${name}: ${line}`);
    };
    child.stdout?.on('data', relay);
    child.stderr?.on('data', relay);
    children.push(child);
    return child;
  };
  let main: ChildProcess;
  if (o.workers > 0) {
    const [port] = (await freePorts(2)) as [number, number];
    main = start(
      [...common, ...run, '--master', '--master-bind-port', String(port), '--expect-workers', String(o.workers)],
      'locust',
    );
    for (let i = 0; i < o.workers; i++) {
      start([...common, '--worker', '--master-host', '127.0.0.1', '--master-port', String(port)], `worker ${i + 1}`);
    }
  } else {
    main = start([...common, ...run], 'locust');
  }
  const pids = () => children.map((c) => c.pid).filter((p): p is number => !!p);
  onStart(pids);
  const exitCode = await new Promise<number>((resolve) => main.once('exit', (code) => resolve(code ?? 1)));
  // Workers stop when the master tells them; make sure they have.
  await Promise.all(children.map((c) => stopChild(c, 'SIGTERM', 15_000)));
  const samples: Sample[] = [];
  if (existsSync(samplesDir)) {
    for (const f of readdirSync(samplesDir))
      samples.push(...parseSampleLines(readFileSync(join(samplesDir, f), 'utf8'), originMs));
  }
  samples.sort((a, b) => a.t - b.t);
  return { exitCode, samples, pids: pids(), htmlReport };
}
