/**
 * The idiomatic BullMQ app that bench/path.ts compares skillserve with, written as BullMQ's
 * documentation shows it (Queue + QueueEvents + job.waitUntilFinished on the producer side, a
 * Worker with a concurrency on the other), calling the same nlp replica's gRPC Infer as the
 * cluster does. One process per role, as a user would run it:
 *
 *   path-baseline.ts server <port>   an Express app: POST /infer → queue.add → waitUntilFinished
 *   path-baseline.ts worker <addr>   a Worker (concurrency 16) calling Infer on replica <addr>
 *
 * Both read BENCH_REDIS_URL and BENCH_QUEUE; each says `ready` over IPC and stops on SIGTERM or
 * when the parent goes away. No cache, no rate limit, no deadline, no priority: what the plain
 * pattern gives.
 */
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents, Worker } from 'bullmq';
import express from 'express';
import { Redis } from 'ioredis';
import { SkillClient } from '../src/skills/client.js';

const [role, arg] = process.argv.slice(2);
const url = process.env.BENCH_REDIS_URL;
const queueName = process.env.BENCH_QUEUE;
if (!url || !queueName || !arg || (role !== 'server' && role !== 'worker'))
  throw new Error('usage: BENCH_REDIS_URL=… BENCH_QUEUE=… path-baseline.ts server <port> | worker <address>');
const connection = () => new Redis(url, { maxRetriesPerRequest: null });

interface Body {
  input: string;
  task: string;
}

async function server(port: number): Promise<() => Promise<void>> {
  const queue = new Queue(queueName!, { connection: connection() });
  const events = new QueueEvents(queueName!, { connection: connection() });
  await events.waitUntilReady();
  const app = express();
  app.use(express.json());
  app.post('/infer', async (req, res) => {
    const { input, task } = req.body as Body;
    try {
      const job = await queue.add('infer', { input, task }, { removeOnComplete: 1000, removeOnFail: 1000 });
      const output: unknown = await job.waitUntilFinished(events, 10_000);
      res.json({ output });
    } catch (err) {
      res.status(500).json({ error: (err as Error).message });
    }
  });
  const listening = app.listen(port, '127.0.0.1');
  await new Promise<void>((resolve) => listening.once('listening', resolve));
  return async () => {
    listening.close();
    await Promise.allSettled([events.close(), queue.close()]);
  };
}

async function worker(address: string): Promise<() => Promise<void>> {
  const client = new SkillClient('nlp', address);
  const w = new Worker<Body>(
    queueName!,
    async (job) => {
      const res = await client.infer(
        {
          id: job.id ?? randomUUID(),
          text: job.data.input,
          parameters: { task: job.data.task, maxTokens: 0, modelVersion: '' },
        },
        10_000,
      );
      return res.json ? JSON.parse(res.json) : res.text;
    },
    { connection: connection(), concurrency: 16 },
  );
  await w.waitUntilReady();
  return async () => {
    await w.close();
    client.close();
  };
}

const close = role === 'server' ? await server(Number(arg)) : await worker(arg);
let closing = false;
const stop = () => {
  if (closing) return;
  closing = true;
  void close().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('disconnect', stop);
process.send?.('ready');
