import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface WrkResult {
  requests: number;
  rps: number;
  /** Latency percentiles in ms. */
  p50: number;
  p90: number;
  p99: number;
  non2xx: number;
  socketErrors: number;
}

/**
 * A wrk script that POSTs a distinct infer request each time (a counter per thread and a nonce
 * per run in the text), so neither the cache nor request coalescing can answer it.
 */
function script(path: string, key: string, nonce: string): string {
  return `
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local counter = 0
local texts = {
  "I love this wonderful sunny city",
  "I hate this terrible awful place",
  "The meeting moved to Tuesday afternoon",
  "What a great and happy surprise",
}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ${key}"
wrk.headers["Cache-Control"] = "no-store"
function request()
  counter = counter + 1
  local body = string.format('{"input":"%s, run ${nonce} thread %d request %d.","task":"sentiment"}',
    texts[counter % #texts + 1], tid, counter)
  return wrk.format(nil, "${path}", nil, body)
end
`;
}

/** Runs wrk against `url` for `seconds` with `connections` open connections; 127.0.0.1 only. */
export async function wrk(opts: {
  url: string;
  key: string;
  seconds: number;
  connections: number;
  threads?: number;
  nonce: string;
}): Promise<WrkResult> {
  const u = new URL(opts.url);
  if (u.hostname !== '127.0.0.1') throw new Error(`benchmarks only load 127.0.0.1, not ${u.hostname}`);
  const dir = mkdtempSync(join(tmpdir(), 'skillserve-wrk-'));
  const file = join(dir, 'infer.lua');
  writeFileSync(file, script(u.pathname, opts.key, opts.nonce));
  try {
    const { stdout } = await run(
      '/usr/bin/wrk',
      [
        `-t${opts.threads ?? 1}`,
        `-c${opts.connections}`,
        `-d${opts.seconds}s`,
        '--timeout',
        '20s',
        '--latency',
        '-s',
        file,
        `${u.origin}${u.pathname}`,
      ],
      { timeout: (opts.seconds + 60) * 1000 },
    );
    return parse(stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function parse(out: string): WrkResult {
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? 0);
  const pct = (p: string) => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(out);
    if (!m) throw new Error(`wrk printed no ${p}% latency:\n${out}`);
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: num(/(\d+) requests in/),
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50: pct('50'),
    p90: pct('90'),
    p99: pct('99'),
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
    socketErrors: errs ? errs.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  };
}
