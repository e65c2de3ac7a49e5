/**
 * How a gateway learns that a job finished (issue 5), with a no-op worker in a child process
 * (bench/completion-worker.ts) so only the waiting side runs here. Three ways, side by side in
 * alternating rounds on one Redis:
 *
 *   events   BullMQ QueueEvents + `job.waitUntilFinished(queueEvents)`;
 *   shared   the project's JobProducer: one pub/sub channel per gateway, subscribed once; the
 *            worker publishes `{ id, result }` there as the dispatcher does;
 *   per-job  a SUBSCRIBE per request to a channel of the job's own, before the add.
 *
 * For each: latency of sequential jobs (1 in flight) and throughput at 64 in flight, each job
 * timed from before its add until its waiter has the result.
 *
 *   npm run bench:completion                        (about 40 s)
 *   BENCH_LATENCY_JOBS=400 BENCH_THROUGHPUT_JOBS=4000 npm run bench:completion   (quick)
 *   BENCH_ROUNDS=6                                  (rounds the counts are split into)
 *   BENCH_NO_WRITE=1 …                              (print only, leave docs/BENCHMARKS.md alone)
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { closeRedis, createRedis, redisReady } from '../src/lib/redis.js';
import { type CompletionMessage, type InferJobData, type InferJobResult, queuePrefix } from '../src/queue/job.js';
import { priorityFor } from '../src/queue/priority.js';
import { JobProducer, RETAINED_JOBS, waitedJobOptions } from '../src/queue/producer.js';
import { perJobChannel } from '../test/helpers/completion-worker.js';
import { deleteKeys } from '../test/helpers/env.js';
import { fixed, machine, revision, writeSection } from './lib/doc-section.js';
import { killAllSync, stopChild, track } from './lib/processes.js';
import { median, percentile } from './lib/stats.js';

const latencyJobs = Number(process.env.BENCH_LATENCY_JOBS ?? 2_000);
const throughputJobs = Number(process.env.BENCH_THROUGHPUT_JOBS ?? 20_000);
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 6));
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const inFlight = 64;
/** Far beyond any job here: no waiter reaches its deadline (a job that did would count as failed). */
const DEADLINE_MS = 10_000;
/** JobProducer's default retention (JOB_RETENTION_S); the other variants add jobs with the same options. */
const RETENTION_S = 60;
const keyPrefix = `bench-completion-${randomUUID().slice(0, 8)}`;
const print = (line: string) => process.stdout.write(`${line}\n`);

type VariantName = 'events' | 'shared' | 'perJob';
const QUEUES: Record<VariantName, string> = { events: 'bench-events', shared: 'bench-shared', perJob: 'bench-per-job' };
const LABELS: Record<VariantName, string> = {
  events: '(a) QueueEvents + `waitUntilFinished`',
  shared: '(b) shared pub/sub channel (JobProducer)',
  perJob: '(c) SUBSCRIBE per request',
};

interface Variant {
  name: VariantName;
  /** Enqueues one job and resolves with its result once this side knows the job finished. */
  run(): Promise<InferJobResult>;
  close(): Promise<void>;
}

function jobData(skill: string): InferJobData & { deadlineAt: number } {
  const now = Date.now();
  return {
    skill,
    requestId: randomUUID(),
    enqueuedAt: now,
    deadlineAt: now + DEADLINE_MS,
    item: { text: 'noop', task: 'noop', maxTokens: 0, modelVersion: '' },
  };
}

/** What the gateway would give a premium tenant's job now: every variant adds with the same priority. */
const priority = () => priorityFor({ tier: 'premium', tenantBacklog: 0, now: Date.now() });

/** JobProducer's options, for the variants that add their own jobs. */
const addOptions = (jobId: string) => waitedJobOptions(jobId, priority(), RETENTION_S);

/** Each variant has its own command connection and its own listening connection, as a gateway would. */
function connections(name: string): { redis: Redis; listener: Redis } {
  return {
    redis: createRedis(redisUrl, { name: `bench-${name}` }),
    listener: createRedis(redisUrl, { name: `bench-${name}-listen`, blocking: true }),
  };
}

async function queueEventsVariant(): Promise<Variant> {
  const { redis, listener } = connections('events');
  await redisReady(redis, redisUrl);
  const prefix = queuePrefix(keyPrefix, QUEUES.events);
  const queue = new Queue<InferJobData, InferJobResult>(QUEUES.events, { connection: redis, prefix });
  // waitUntilFinished adds a listener per waiting job on both.
  queue.setMaxListeners(0);
  const events = new QueueEvents(QUEUES.events, { connection: listener, prefix });
  events.setMaxListeners(0);
  await events.waitUntilReady();
  return {
    name: 'events',
    async run() {
      const job = await queue.add('infer', jobData(QUEUES.events), addOptions(randomUUID()));
      return (await job.waitUntilFinished(events, DEADLINE_MS)) as InferJobResult;
    },
    async close() {
      await events.close();
      await queue.close();
      await Promise.all([closeRedis(redis), closeRedis(listener)]);
    },
  };
}

async function sharedChannelVariant(): Promise<Variant> {
  const { redis, listener } = connections('shared');
  await redisReady(redis, redisUrl);
  const producer = new JobProducer({
    redis,
    subscriber: listener,
    keyPrefix,
    retentionS: RETENTION_S,
    maxDepth: () => Number.MAX_SAFE_INTEGER,
    logger: pino({ level: 'warn' }),
  });
  await producer.start();
  return {
    name: 'shared',
    run: () => producer.run(jobData(QUEUES.shared), { priority: priority() }),
    async close() {
      await producer.close();
      await Promise.all([closeRedis(redis), closeRedis(listener)]);
    },
  };
}

/** One subscriber connection; each request SUBSCRIBEs to its job's channel before the add and UNSUBSCRIBEs on the answer. */
async function perJobVariant(): Promise<Variant> {
  const { redis, listener } = connections('per-job');
  await redisReady(redis, redisUrl);
  const queue = new Queue<InferJobData, InferJobResult>(QUEUES.perJob, {
    connection: redis,
    prefix: queuePrefix(keyPrefix, QUEUES.perJob),
  });
  const waiters = new Map<string, (msg: CompletionMessage) => void>();
  listener.on('message', (channel: string, message: string) => waiters.get(channel)?.(JSON.parse(message)));
  return {
    name: 'perJob',
    async run() {
      const id = randomUUID();
      const channel = perJobChannel(keyPrefix, id);
      const done = new Promise<InferJobResult>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer for ${id}`)), DEADLINE_MS);
        waiters.set(channel, (msg) => {
          clearTimeout(timer);
          waiters.delete(channel);
          listener.unsubscribe(channel).catch(() => undefined);
          if (msg.ok) resolve(msg.result);
          else reject(new Error(JSON.stringify(msg.error)));
        });
      });
      try {
        await listener.subscribe(channel);
        await queue.add('infer', jobData(QUEUES.perJob), addOptions(id));
      } catch (err) {
        waiters.get(channel)?.({ id, ok: false, error: String(err) });
      }
      return done;
    },
    async close() {
      await queue.close();
      await Promise.all([closeRedis(redis), closeRedis(listener)]);
    },
  };
}

/** Per variant: job latencies (ms) and failures, in one window. */
interface Window {
  ms: number[];
  failed: number;
  elapsedMs: number;
}

async function runJobs(v: Variant, count: number, concurrency: number): Promise<Window> {
  const w: Window = { ms: [], failed: 0, elapsedMs: 0 };
  let started = 0;
  const t0 = performance.now();
  const lane = async () => {
    while (started < count) {
      started++;
      const t = performance.now();
      try {
        const result = await v.run();
        if ('text' in result.output && result.output.text === 'noop') w.ms.push(performance.now() - t);
        else w.failed++;
      } catch {
        w.failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  w.elapsedMs = performance.now() - t0;
  return w;
}

const jobsPerS = (w: Window) => (w.ms.length * 1000) / w.elapsedMs;

/** Runs `count` jobs per variant split into `rounds` windows, rotating which variant goes first. */
async function alternate(variants: Variant[], count: number, concurrency: number): Promise<Map<VariantName, Window[]>> {
  const out = new Map<VariantName, Window[]>(variants.map((v) => [v.name, []]));
  const per = Math.ceil(count / rounds);
  for (let r = 0; r < rounds; r++) {
    const order = variants.map((_, i) => variants[(i + r) % variants.length]!);
    for (const v of order) {
      const w = await runJobs(v, per, concurrency);
      out.get(v.name)!.push(w);
      print(
        `  round ${r + 1} ${v.name} @${concurrency}: p50 ${fixed(median(w.ms), 2)} ms, p99 ${fixed(percentile(w.ms, 99), 2)} ms, ` +
          `${fixed(jobsPerS(w), 0)} jobs/s, failed ${w.failed}/${per}`,
      );
    }
  }
  return out;
}

const signedUs = (ms: number) => `${ms >= 0 ? '+' : '−'}${fixed(Math.abs(ms) * 1000, 0)}`;

function startWorker(): Promise<ChildProcess> {
  const child = track(
    fork(fileURLToPath(new URL('./completion-worker.ts', import.meta.url)), [], {
      execArgv: ['--import', 'tsx'],
      env: {
        ...process.env,
        BENCH_REDIS_URL: redisUrl,
        BENCH_KEY_PREFIX: keyPrefix,
        BENCH_QUEUES: JSON.stringify(QUEUES),
        BENCH_CONCURRENCY: String(inFlight),
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  return new Promise((resolve, reject) => {
    child.once('message', (m) => (m === 'ready' ? resolve(child) : reject(new Error(`worker said ${String(m)}`))));
    child.once('exit', (code) => {
      reject(new Error(`the worker exited (${code}) before it was ready`));
      // Past start-up every job would wait out its deadline: give up at once.
      if (!stopping) {
        print(`bench: the worker exited (${code}) mid-run`);
        void deleteKeys(keyPrefix).finally(() => process.exit(1));
      }
    });
  });
}

let worker: ChildProcess | undefined;
let stopping = false;

async function main(): Promise<void> {
  const load = loadavg()
    .map((x) => x.toFixed(2))
    .join(', ');
  const variants: Variant[] = [];
  let latency: Map<VariantName, Window[]>;
  let throughput: Map<VariantName, Window[]>;
  try {
    print(`key prefix ${keyPrefix}; starting the no-op worker (concurrency ${inFlight}) in a child process`);
    worker = await startWorker();
    variants.push(await queueEventsVariant(), await sharedChannelVariant(), await perJobVariant());
    print('warm-up');
    for (const v of variants) {
      await runJobs(v, 200, 1);
      await runJobs(v, 2_000, inFlight);
    }
    print(`latency: ${latencyJobs} sequential jobs per variant, in ${rounds} rounds`);
    latency = await alternate(variants, latencyJobs, 1);
    print(`throughput: ${throughputJobs} jobs per variant at ${inFlight} in flight, in ${rounds} rounds`);
    throughput = await alternate(variants, throughputJobs, inFlight);
  } finally {
    await Promise.allSettled(variants.map((v) => v.close()));
    stopping = true;
    // The worker closes its BullMQ workers and connections on SIGTERM.
    if (worker) await stopChild(worker, 'SIGTERM', 5_000);
    await deleteKeys(keyPrefix);
  }
  const body = report(latency, throughput, load);
  print(`\n${body}`);
  if (!process.env.BENCH_NO_WRITE) {
    writeSection('completion', body);
    print('\nwrote docs/BENCHMARKS.md (bench:completion section)');
  }
}

function report(latency: Map<VariantName, Window[]>, throughput: Map<VariantName, Window[]>, load: string): string {
  const names: VariantName[] = ['events', 'shared', 'perJob'];
  const all = (ws: Window[]) => ws.flatMap((w) => w.ms);
  const failed = (ws: Window[]) => ws.reduce((a, w) => a + w.failed, 0);
  const rate = (n: VariantName) => median(throughput.get(n)!.map(jobsPerS));
  const p50 = (n: VariantName) => percentile(all(latency.get(n)!), 50);
  // Paired by round: each round ran every variant back to back, so noise hits them alike.
  const ratios = (num: (r: number) => number, den: (r: number) => number) =>
    median(Array.from({ length: rounds }, (_, r) => num(r) / den(r)));
  const roundP50 = (n: VariantName) => (r: number) => median(latency.get(n)![r]!.ms);
  const roundRate = (n: VariantName) => (r: number) => jobsPerS(throughput.get(n)![r]!);
  const row = (n: VariantName) => {
    const l = latency.get(n)!;
    const t = throughput.get(n)!;
    return (
      `| ${LABELS[n]} | ${fixed(p50(n), 2)} | ${fixed(percentile(all(l), 99), 2)} | ` +
      `${fixed(rate(n), 0)} | ${fixed(percentile(all(t), 50), 1)} | ${fixed(percentile(all(t), 99), 1)} | ` +
      `${failed(l) + failed(t)} / ${latencyJobs + throughputJobs} |`
    );
  };
  // Each variant against the shared channel in the same round, median over rounds.
  const vsShared = (n: VariantName) => ({
    rate: ratios(roundRate(n), roundRate('shared')),
    p50: ratios(roundP50(n), roundP50('shared')),
  });
  /** How a ratio against the shared channel reads; within ±5% is a tie on a shared 2-core machine. */
  const verdict = (ratio: number, higherIsBetter: boolean) =>
    Math.abs(ratio - 1) < 0.05 ? 'a tie' : ratio > 1 === higherIsBetter ? 'better' : 'worse';
  const summary = (n: VariantName) => {
    const r = vsShared(n);
    return (
      `${LABELS[n]}: jobs/s ${fixed(r.rate, 2)}× (${verdict(r.rate, true)}), ` +
      `p50 @1 ${fixed(r.p50, 2)}× (${verdict(r.p50, false)})`
    );
  };
  const ratioRow = (n: VariantName) => {
    const r = vsShared(n);
    return `| ${LABELS[n]} | ${fixed(r.rate, 2)}× | ${fixed(r.p50, 2)}× |`;
  };
  return [
    '## How a gateway learns a job finished',
    '',
    `Measured ${new Date().toISOString()} at commit ${revision()} on ${machine()}; load average before the run ` +
      `${load} (a machine shared with other work). Reproduce with \`npm run bench:completion\` ` +
      `(this run: BENCH_LATENCY_JOBS=${latencyJobs}, BENCH_THROUGHPUT_JOBS=${throughputJobs}, BENCH_ROUNDS=${rounds}).`,
    '',
    'A no-op BullMQ worker (concurrency 64) runs in a child process, so the waiting side has its event loop to ' +
      'itself; both talk to one local Redis. Each job is timed from before its `add` until its waiter holds the ' +
      'result, and added with the options JobProducer uses (a gateway priority, attempts 1, kept ' +
      `${RETENTION_S} s / ${RETAINED_JOBS.toLocaleString('en-US')} jobs after it finishes). ` +
      'Each variant has its own queue, command connection and listening connection. ' +
      `The ${latencyJobs} sequential jobs and the ${throughputJobs} jobs at ${inFlight} in flight are each split into ` +
      `${rounds} rounds that run every variant back to back, rotating which goes first, after a warm-up; ` +
      'latency percentiles are over all jobs, jobs/s is the median over rounds.',
    '',
    `| variant | p50 ms @1 | p99 ms @1 | jobs/s @${inFlight} | p50 ms @${inFlight} | p99 ms @${inFlight} | failed / jobs |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...names.map(row),
    '',
    `Each variant against the shared channel in the same round (median of the ${rounds} per-round ratios; ` +
      'jobs/s above 1× is more throughput, p50 above 1× is slower):',
    '',
    `| variant ÷ (b) | jobs/s @${inFlight} | p50 @1 |`,
    '| --- | ---: | ---: |',
    ratioRow('events'),
    ratioRow('perJob'),
    '',
    `Against the shared channel, ±5% counted as a tie: ${summary('events')}; ${summary('perJob')}.`,
    '',
    'Why: under load, QueueEvents makes every gateway read every event of the queue (added, waiting, active, ' +
      'completed, …) from its stream and `waitUntilFinished` asks Redis once more per job whether it already ' +
      'finished; a SUBSCRIBE per request adds two round trips (SUBSCRIBE before the add, UNSUBSCRIBE after) on ' +
      'the one connection all requests share; the shared channel costs one PUBLISH and one message per gateway. ' +
      `At 1 in flight the difference is small (QueueEvents' p50 ${signedUs(p50('events') - p50('shared'))} µs ` +
      "against the shared channel's) and can go QueueEvents' way: BullMQ writes the " +
      '`completed` event in the script that finishes the job, one worker round trip before the PUBLISH the ' +
      'worker sends when that script returns, and the extra check runs while the job is still being processed. ' +
      'A difference of that size is small next to the queue path’s few ms (bench:queue); what decides is the ' +
      'throughput under load and the cost in connections: QueueEvents needs a blocking connection per queue ' +
      '(skill) on every gateway, the shared channel one subscriber per gateway. Absolute figures move with the ' +
      'machine (an earlier measurement saw 1.0–1.3 ms p50): compare within one run.',
    '',
    '### Why the shared channel stays correct with N gateways',
    '',
    '- **Every gateway hears every completion.** Each gateway SUBSCRIBEs once, at start, before it serves a ' +
      'request; the dispatcher publishes one `{ id, skill, ok, result | error }` per finished job, and a gateway ' +
      'drops the ones it has no waiter for. Two gateways waiting on one coalesced job both resolve from the one ' +
      'message (test/integration/completion.test.ts).',
    '- **A lost message, a reconnect, a late subscriber.** Pub/sub keeps nothing for a subscriber that was not ' +
      'listening. A waiter does not rely on it alone: when its deadline comes it reads the job once, and a ' +
      'completed or failed job answers with its result or its own error instead of a 504; a job still queued or ' +
      'running answers 504 `DEADLINE_EXCEEDED` (the deadline is in the job: the dispatcher drops a queued one ' +
      'unread and bounds a running one’s skill call by it). So no request waits past its deadline, message or ' +
      'not, but for the read itself: two commands (the job, its state), each bounded by the gateway ' +
      'connection’s 2 s command timeout when Redis hangs. test/integration/completion.test.ts proves each case ' +
      'on real Redis.',
    '- **A gateway restart.** Its waiters lived in its memory and its clients’ connections died with it: ' +
      'there is nobody to answer. The jobs still run; the new process subscribes again before it listens.',
    '- **What the safety net needs.** The read at the deadline needs the finished job still to be there: ' +
      `every finished job, coalesced or not, is kept ${RETENTION_S} s (JOB_RETENTION_S) and at most ` +
      `${RETAINED_JOBS.toLocaleString('en-US')} per queue, seconds of work even at the rates above. Each request ` +
      'has its own deadline and its own read (one HMGET, given at most 250 ms), so an identical request timing ' +
      'out on the same gateway does not answer the others, and a Redis that hangs cannot hold a 504 long past ' +
      'its deadline (test/integration/completion.test.ts).',
    '',
    '**BRPOP** (the worker LPUSHes the result to a list of the job’s own and each waiter blocks on it) is not ' +
      'measured here. Reasoning: a blocked BRPOP holds its connection, so a gateway needs one Redis connection ' +
      'per request in flight (hundreds per gateway under load, each with its buffers and a file descriptor on ' +
      'both sides, against Redis’ `maxclients`) or queues waiters behind a pool; and a list element goes to one ' +
      'popper only, so two gateways waiting on one coalesced job would need the worker to know how many waiters ' +
      'there are. It needs no deadline read (the list stays until it expires), but costs a connection per waiter.',
  ].join('\n');
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    print(`\nbench: ${signal}, stopping…`);
    killAllSync();
    void deleteKeys(keyPrefix).finally(() => process.exit(130));
  });
}
process.on('exit', () => killAllSync());

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
