import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { track } from './processes.js';

const execFileAsync = promisify(execFile);

export interface WrkOptions {
  url: string;
  connections: number;
  durationS: number;
  /** A wrk Lua script (e.g. bench/post.lua); without one wrk sends GET. */
  script?: string;
  /** The script's text instead of a file (written to a temporary file for the run). */
  scriptText?: string;
  /** wrk threads; 1 unless the generator needs more (see runWrk). */
  threads?: number;
  /** Extra request headers (wrk -H), e.g. Authorization. */
  headers?: Record<string, string>;
  /** Per-request timeout; a request slower than this is counted as a timeout, not as latency. */
  timeoutS?: number;
}

export interface WrkResult {
  requestsPerSec: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  /** wrk's "Non-2xx or 3xx responses": answers with status >= 400. */
  non2xx: number;
  /** Connect, read, write errors and timeouts. */
  socketErrors: number;
}

/**
 * The benchmarks' one wrk runner. One thread by default: the machine has few cores and wrk
 * shares them with what it measures, so a second wrk thread would mostly take CPU away from the
 * servers. Loads 127.0.0.1 only.
 */
export async function runWrk(opts: WrkOptions): Promise<WrkResult> {
  const host = new URL(opts.url).hostname;
  if (host !== '127.0.0.1') throw new Error(`benchmarks only load 127.0.0.1, not ${host}`);
  if (opts.scriptText === undefined) return wrkOnce(opts);
  const dir = mkdtempSync(join(tmpdir(), 'skillserve-wrk-'));
  const script = join(dir, 'script.lua');
  writeFileSync(script, opts.scriptText);
  try {
    return await wrkOnce({ ...opts, script });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function wrkOnce(opts: WrkOptions): Promise<WrkResult> {
  const args = [
    `-t${opts.threads ?? 1}`,
    `-c${opts.connections}`,
    `-d${opts.durationS}s`,
    `--timeout`,
    `${opts.timeoutS ?? 10}s`,
    '--latency',
  ];
  for (const [name, value] of Object.entries(opts.headers ?? {})) args.push('-H', `${name}: ${value}`);
  if (opts.script) args.push('-s', opts.script);
  args.push(opts.url);
  const run = execFileAsync('wrk', args, { maxBuffer: 1024 * 1024, timeout: (opts.durationS + 60) * 1000 });
  track(run.child);
  const { stdout } = await run;
  return parseWrkOutput(stdout);
}

/** Parses `wrk --latency` output; throws (quoting the output) when a figure is missing. */
export function parseWrkOutput(out: string): WrkResult {
  const need = (re: RegExp, what: string): RegExpMatchArray => {
    const m = out.match(re);
    if (!m) throw new Error(`wrk output has no ${what}:\n${out}`);
    return m;
  };
  const rps = need(/^Requests\/sec:\s+([\d.]+)/m, 'Requests/sec line');
  const total = need(/^\s*(\d+) requests in /m, 'request count');
  const p50 = need(/^\s*50%\s+([\d.]+)(us|ms|s|m|h)\s*$/m, '50% latency line (was --latency given?)');
  const p99 = need(/^\s*99%\s+([\d.]+)(us|ms|s|m|h)\s*$/m, '99% latency line');
  const non2xx = out.match(/Non-2xx or 3xx responses:\s+(\d+)/);
  const socket = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  return {
    requestsPerSec: Number(rps[1]),
    requests: Number(total[1]),
    p50Ms: toMs(Number(p50[1]), p50[2] ?? ''),
    p99Ms: toMs(Number(p99[1]), p99[2] ?? ''),
    // wrk prints these lines only when the count is not zero.
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
  };
}

const MS_PER_UNIT: Record<string, number> = { us: 0.001, ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

function toMs(value: number, unit: string): number {
  const factor = MS_PER_UNIT[unit];
  if (factor === undefined) throw new Error(`wrk latency unit "${unit}" is not known`);
  return value * factor;
}
