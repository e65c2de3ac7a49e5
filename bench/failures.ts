/**
 * What each outage does to a client: the cluster under steady mixed load (cache hits, misses,
 * async jobs, memory writes, about 200 requests/s), while one dependency or role is killed,
 * frozen (SIGSTOP) or restarted. Redis and Postgres are private instances started here (never
 * the machine's), Redis with the project's redis/redis.conf (AOF).
 *
 *   npm run bench:failures [-- --rate 200 --fault-s 10 --no-write]
 *
 * For each scenario: the requests that started during the fault and the 2 s after it, by kind:
 * how many failed (and with which codes), p50 and p99 latency as the client saw it; and for the
 * async jobs accepted in that window, how many finished, failed or were lost (404).
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { startPostgresInstance } from '../test/helpers/postgres-instance.js';
import { OwnRedis } from '../test/helpers/redis-server.js';
import { startBenchCluster } from './cluster.js';
import { fixed, machine, revision, writeSection } from './lib/doc-section.js';

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '200' },
    'fault-s': { type: 'string', default: '10' },
    only: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
  },
});
const RATE = Number(args.rate);
const FAULT_MS = Number(args['fault-s']) * 1000;
const AFTER_MS = 2_000;
const print = (line: string) => process.stdout.write(`${line}\n`);

type Kind = 'hit' | 'miss' | 'job' | 'write';
interface Sample {
  kind: Kind;
  start: number;
  ms: number;
  status: number;
  code?: string;
  jobId?: string;
}

const redis = await OwnRedis.start();
const pgi = await startPostgresInstance();
const dropDependencies = async () => {
  redis.resume();
  await pgi.resume().catch(() => undefined);
  await Promise.allSettled([redis.destroy(), pgi.destroy()]);
};
const loadBefore = loadavg()[0]!;
const cluster = await startBenchCluster(print, {
  REDIS_URL: redis.url,
  DATABASE_URL: pgi.url,
  REDIS_PERSISTENCE: 'require',
  NGINX_CONN_PER_IP: '60000',
  SKILLS: 'nlp',
  LOG_LEVEL: 'error',
}).catch(async (err: unknown) => {
  await dropDependencies();
  throw err;
});
const stopAll = async () => {
  await cluster.stop().catch(() => undefined);
  await dropDependencies();
};
process.once('SIGINT', () => {
  cluster.killSync();
  process.exit(130);
});

const base = cluster.endpoint;
const headers = { ...cluster.headers, 'content-type': 'application/json' };
const hot = Array.from({ length: 20 }, (_, i) => `A popular question, number ${i}: is this cached?`);

async function request(kind: Kind, n: number): Promise<Sample> {
  const start = Date.now();
  const t0 = performance.now();
  let url = `${base}/v1/skills/nlp/infer`;
  let body: unknown;
  const extra: Record<string, string> = {};
  if (kind === 'hit') body = { input: hot[n % hot.length], task: 'sentiment' };
  else if (kind === 'miss') body = { input: `A new question ${randomUUID()}`, task: 'sentiment' };
  else if (kind === 'job') {
    url = `${base}/v1/jobs`;
    body = { skill: 'nlp', input: `An async job ${randomUUID()}`, task: 'sentiment' };
  } else {
    url = `${base}/v1/memory/triples`;
    body = { subject: `bench-${n}`, verb: 'has', object: randomUUID() };
    extra['idempotency-key'] = randomUUID();
  }
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { ...headers, ...extra },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let parsed: { id?: string; error?: { code?: string } } | undefined;
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      parsed = undefined;
    }
    return {
      kind,
      start,
      ms: performance.now() - t0,
      status: res.status,
      code: parsed?.error?.code,
      ...(kind === 'job' && res.status === 202 ? { jobId: parsed?.id } : {}),
    };
  } catch (err) {
    return { kind, start, ms: performance.now() - t0, status: 0, code: (err as Error).name };
  }
}

/** Open-loop load at RATE requests/s: 60 % hits, 25 % misses, 10 % async jobs, 5 % memory writes. */
function load(samples: Sample[]): { stop: () => Promise<void> } {
  let n = 0;
  let stopped = false;
  const inFlight = new Set<Promise<void>>();
  const timer = setInterval(
    () => {
      if (stopped) return;
      const i = n++;
      const r = i % 20;
      const kind: Kind = r < 12 ? 'hit' : r < 17 ? 'miss' : r < 19 ? 'job' : 'write';
      const p = request(kind, i).then((s) => {
        samples.push(s);
      });
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    },
    Math.max(1, 1000 / RATE),
  );
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await Promise.all(inFlight);
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const proc = (name: string) => cluster.processes.find((p) => p.spec.name === name)!;
const signal = (name: string, sig: NodeJS.Signals) => {
  const pid = proc(name).pid;
  if (pid) process.kill(pid, sig);
};

interface Scenario {
  name: string;
  what: string;
  fault(): Promise<void>;
}

const scenarios: Scenario[] = [
  {
    name: 'redis-restart',
    what: `Redis killed (SIGKILL), down ${FAULT_MS / 2000} s, restarted on its AOF`,
    async fault() {
      await redis.stop();
      await sleep(FAULT_MS / 2);
      await redis.start();
    },
  },
  {
    name: 'redis-hang',
    what: `Redis frozen (SIGSTOP) ${FAULT_MS / 1000} s`,
    async fault() {
      redis.pause();
      await sleep(FAULT_MS);
      redis.resume();
    },
  },
  {
    name: 'postgres-hang',
    what: `Postgres frozen (SIGSTOP) ${FAULT_MS / 1000} s`,
    async fault() {
      await pgi.pause();
      await sleep(FAULT_MS);
      await pgi.resume();
    },
  },
  {
    name: 'postgres-down',
    what: `Postgres stopped (immediate) ${FAULT_MS / 2000} s, then started`,
    async fault() {
      await pgi.stop('immediate');
      await sleep(FAULT_MS / 2);
      await pgi.start();
    },
  },
  {
    name: 'skill-kill',
    what: 'the nlp skill killed (SIGKILL); the supervisor restarts it',
    async fault() {
      signal('skill-nlp', 'SIGKILL');
      await sleep(FAULT_MS / 2);
    },
  },
  {
    name: 'dispatcher-kill',
    what: 'the dispatcher killed (SIGKILL); the supervisor restarts it',
    async fault() {
      signal('dispatcher-1', 'SIGKILL');
      await sleep(FAULT_MS / 2);
    },
  },
  {
    name: 'gateway-kill',
    what: 'one of two gateways killed (SIGKILL); the supervisor restarts it',
    async fault() {
      signal('gateway-1', 'SIGKILL');
      await sleep(FAULT_MS / 2);
    },
  },
];

interface Row {
  scenario: Scenario;
  kind: Kind;
  total: number;
  failed: number;
  codes: string;
  p50: number;
  p99: number;
}

const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

/** Final state of every async job: completed, failed (with the code) or lost (404). */
async function jobOutcomes(
  ids: string[],
): Promise<{ completed: number; failed: string[]; lost: number; open: number }> {
  const out = { completed: 0, failed: [] as string[], lost: 0, open: 0 };
  const deadline = Date.now() + 60_000;
  let pending = ids;
  while (pending.length > 0 && Date.now() < deadline) {
    const next: string[] = [];
    for (const id of pending) {
      const res = await fetch(`${base}/v1/jobs/${id}`, { headers: cluster.headers }).catch(() => undefined);
      const body = (await res?.json().catch(() => undefined)) as
        { status?: string; error?: { code?: string } } | undefined;
      if (res?.status === 404) out.lost++;
      else if (body?.status === 'completed') out.completed++;
      else if (body?.status === 'failed') out.failed.push(body.error?.code ?? '?');
      else next.push(id);
    }
    pending = next;
    if (pending.length > 0) await sleep(500);
  }
  out.open = pending.length;
  return out;
}

const rows: Row[] = [];
const jobLines: string[] = [];
try {
  // Warm the hot set on both gateways.
  for (let round = 0; round < 3; round++) await Promise.all(hot.map((_, i) => request('hit', i)));
  for (const scenario of scenarios.filter((s) => !args.only || args.only.split(',').includes(s.name))) {
    print(`failures: ${scenario.what}…`);
    const samples: Sample[] = [];
    const running = load(samples);
    await sleep(3_000);
    const from = Date.now();
    await scenario.fault();
    const to = Date.now() + AFTER_MS;
    await sleep(AFTER_MS + 3_000);
    await running.stop();
    const window = samples.filter((s) => s.start >= from && s.start <= to);
    for (const kind of ['hit', 'miss', 'job', 'write'] as const) {
      const mine = window.filter((s) => s.kind === kind);
      const bad = mine.filter((s) => s.status < 200 || s.status >= 300);
      const codes = new Map<string, number>();
      for (const s of bad)
        codes.set(`${s.status} ${s.code ?? ''}`.trim(), (codes.get(`${s.status} ${s.code ?? ''}`.trim()) ?? 0) + 1);
      rows.push({
        scenario,
        kind,
        total: mine.length,
        failed: bad.length,
        codes: [...codes].map(([c, k]) => `${k}× ${c}`).join(', '),
        p50: pct(
          mine.map((s) => s.ms),
          0.5,
        ),
        p99: pct(
          mine.map((s) => s.ms),
          0.99,
        ),
      });
    }
    const ids = window.filter((s) => s.jobId).map((s) => s.jobId!);
    const jobs = await jobOutcomes(ids);
    const failedCodes = [...new Set(jobs.failed)].join(', ');
    jobLines.push(
      `| ${scenario.name} | ${ids.length} | ${jobs.completed} | ${jobs.failed.length}${failedCodes ? ` (${failedCodes})` : ''} | ${jobs.lost} | ${jobs.open} |`,
    );
    for (const r of rows.filter((x) => x.scenario === scenario))
      print(
        `  ${r.kind.padEnd(5)} ${r.failed}/${r.total} failed ${r.codes ? `(${r.codes}) ` : ''}p50 ${fixed(r.p50)} ms p99 ${fixed(r.p99)} ms`,
      );
    print(
      `  jobs accepted ${ids.length}: completed ${jobs.completed}, failed ${jobs.failed.length}, lost ${jobs.lost}, open ${jobs.open}`,
    );
    // Let the cluster settle (restarted roles ready, breakers closed) before the next fault.
    await sleep(5_000);
  }
} finally {
  await stopAll();
}

const loadAfter = loadavg()[0]!;
const table = [
  '| scenario | requests | failed | answers other than 2xx | p50 ms | p99 ms |',
  '| --- | --- | --- | --- | --- | --- |',
  ...rows.map(
    (r) =>
      `| ${r.scenario.name}: ${r.kind} | ${r.total} | ${r.total ? fixed((100 * r.failed) / r.total) : 'n/a'} % | ${r.codes || '—'} | ${fixed(r.p50, 0)} | ${fixed(r.p99, 0)} |`,
  ),
].join('\n');
const body = `## What each outage does to a client

\`npm run bench:failures\` — ${RATE} requests/s open-loop from one Node process (60 % cache hits,
25 % misses, 10 % async jobs, 5 % memory writes with an Idempotency-Key) through nginx to 2
gateways, 1 dispatcher, the nlp skill; private Redis (redis/redis.conf, AOF) and Postgres. Each
fault is injected after 3 s of load; the figures cover the requests that started during the fault
and the ${AFTER_MS / 1000} s after it, latency as the client saw it. Revision ${revision()}, ${machine()};
load average ${fixed(loadBefore)} before, ${fixed(loadAfter)} after (other work shared the machine when
these are above ~1).

${scenarios.map((s) => `- **${s.name}**: ${s.what}`).join('\n')}

${table}

Async jobs accepted (202) in each window, and what became of them:

| scenario | accepted | completed | failed | lost (404) | not finished after 60 s |
| --- | --- | --- | --- | --- | --- |
${jobLines.join('\n')}
`;
print(`\n${body}`);
if (!args['no-write']) writeSection('failures', body);
