/**
 * The no-op worker side of bench/completion.ts, in a process of its own so that its event loop is
 * not the waiting side's. One BullMQ worker per variant's queue; each answers at once and
 * announces the completion the way its variant needs:
 *
 *   events   nothing (BullMQ's own events stream is what QueueEvents reads);
 *   shared   `CompletionMessage` on `completionChannel(keyPrefix)`, as the dispatcher does;
 *   per-job  the same message on a channel of the job's own.
 *
 * Started by bench/completion.ts with BENCH_REDIS_URL, BENCH_KEY_PREFIX, BENCH_QUEUES (JSON:
 * the queue of each variant) and BENCH_CONCURRENCY; says `ready` over IPC once every worker is
 * connected, and closes on SIGTERM (or when the parent goes away).
 */
import type { Worker } from 'bullmq';
import { completionChannel, type InferJobData, type InferJobResult } from '../src/queue/job.js';
import { closeRedis, createRedis, redisReady } from '../src/lib/redis.js';
import { perJobChannel, startCompletionWorker } from '../test/helpers/completion-worker.js';

async function main(): Promise<void> {
  const url = process.env.BENCH_REDIS_URL;
  const keyPrefix = process.env.BENCH_KEY_PREFIX;
  const queues = JSON.parse(process.env.BENCH_QUEUES ?? '{}') as Partial<
    Record<'events' | 'shared' | 'perJob', string>
  >;
  const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64);
  if (!url || !keyPrefix || !queues.events || !queues.shared || !queues.perJob) {
    throw new Error('BENCH_REDIS_URL, BENCH_KEY_PREFIX and BENCH_QUEUES (events, shared, perJob) must be set');
  }
  // The dispatcher's two connections: one BullMQ blocks on, one for commands and publishing.
  const connection = createRedis(url, { name: 'bench-worker', blocking: true });
  const publisher = createRedis(url, { name: 'bench-publisher' });
  await redisReady(publisher, url);
  const common = { connection, publisher, keyPrefix, concurrency };
  const shared = completionChannel(keyPrefix);
  const workers: Worker<InferJobData, InferJobResult>[] = [
    startCompletionWorker({ ...common, skill: queues.events }),
    startCompletionWorker({ ...common, skill: queues.shared, channel: () => shared }),
    startCompletionWorker({ ...common, skill: queues.perJob, channel: (id) => perJobChannel(keyPrefix, id) }),
  ];
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  let closing = false;
  const close = async () => {
    if (closing) return;
    closing = true;
    await Promise.allSettled(workers.map((w) => w.close()));
    await Promise.allSettled([closeRedis(publisher), closeRedis(connection)]);
    process.exit(0);
  };
  process.on('disconnect', () => void close());
  process.on('SIGTERM', () => void close());
  process.send?.('ready');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench worker: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
