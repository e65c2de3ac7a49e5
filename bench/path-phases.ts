import { randomInt, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { BenchCluster } from './cluster.js';
import { median } from './lib/stats.js';
import { keepAliveClient } from './queue-load.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWrk, type WrkResult } from './lib/wrk.js';

/** Median ms per phase, by name (`client` is the whole round trip as the client saw it). */
export type Phases = Record<string, number>;

/** `Server-Timing: a;dur=1.2, b;dur=0.3` as `{ a: 1.2, b: 0.3 }`. */
export function parseServerTiming(header: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of (header ?? '').split(',')) {
    const [name, ...params] = part.trim().split(';');
    const dur = params.map((p) => /^\s*dur=([\d.]+)/.exec(p)).find(Boolean);
    if (name && dur) out[name] = Number(dur[1]);
  }
  return out;
}

/**
 * Where a skillserve request's time goes, at 1 connection (sequential requests) and at 64 (one
 * probing client next to wrk's 63 connections of distinct requests): medians of the answer's
 * `Server-Timing` phases (and of its `timings`, while there is no header), plus the client's
 * whole round trip.
 */
export async function phaseBreakdown(c: BenchCluster, durationS: number): Promise<Record<number, Phases>> {
  const out: Record<number, Phases> = {};
  const probe = async (until: number, skip: number): Promise<Phases> => {
    const http = keepAliveClient();
    const seen: Record<string, number[]> = {};
    const run = randomUUID().slice(0, 8);
    try {
      for (let i = 0; Date.now() < until; i++) {
        const body = JSON.stringify({ task: 'sentiment', input: `Phases ${run} request ${i}, distinct.` });
        const t = performance.now();
        const res = await http.post(c.url, { ...c.headers, 'cache-control': 'no-cache' }, body);
        const clientMs = performance.now() - t;
        if (i < skip || res.status !== 200) continue;
        const phases = {
          ...numbers(res.json?.timings),
          ...parseServerTiming(String(res.headers['server-timing'] ?? '')),
        };
        for (const [k, v] of Object.entries({ ...phases, client: clientMs })) (seen[k] ??= []).push(v);
      }
    } finally {
      http.close();
    }
    return Object.fromEntries(Object.entries(seen).map(([k, xs]) => [k, median(xs)]));
  };
  out[1] = await probe(Date.now() + durationS * 1000, 20);
  const load = wrkDistinct({
    url: c.url,
    path: '/v1/skills/nlp/infer',
    headers: { ...c.headers, 'Cache-Control': 'no-cache' },
    connections: 63,
    durationS,
    nonce: randomInt(1, 1e9),
  }).catch(() => undefined);
  out[64] = await probe(Date.now() + (durationS - 1) * 1000, 5);
  await load;
  return out;
}

function numbers(x: unknown): Record<string, number> {
  if (!x || typeof x !== 'object') return {};
  return Object.fromEntries(Object.entries(x).filter((e): e is [string, number] => typeof e[1] === 'number'));
}

/** wrk POSTing nlp `sentiment` requests whose inputs all differ (a counter and `nonce`). */
export async function wrkDistinct(opts: {
  url: string;
  path: string;
  headers: Record<string, string>;
  connections: number;
  durationS: number;
  nonce: number;
}): Promise<WrkResult> {
  const lua = `
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
local prefix = '{"task":"sentiment","input":"My sister Maria lives in Madrid and loves her new job. #${opts.nonce}-'
request = function()
  counter = counter + 1
  return wrk.format(nil, "${opts.path}", nil, prefix .. counter .. '"}')
end
`;
  const dir = mkdtempSync(join(tmpdir(), 'skillserve-path-'));
  const script = join(dir, 'distinct.lua');
  writeFileSync(script, lua);
  try {
    return await runWrk({ ...opts, script, timeoutS: 20 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
