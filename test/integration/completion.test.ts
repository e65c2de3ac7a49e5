import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { AppError } from '../../src/errors/index.js';
import { closeRedis, createRedis, redisReady } from '../../src/lib/redis.js';
import {
  completionChannel,
  type CompletionMessage,
  type InferJobData,
  type InferJobResult,
  queuePrefix,
} from '../../src/queue/job.js';
import { JobProducer } from '../../src/queue/producer.js';
import { type CompletionWorkerOptions, noopResult, startCompletionWorker } from '../helpers/completion-worker.js';
import { deleteKeys, eventually, REDIS_URL } from '../helpers/env.js';

/**
 * How a gateway learns that a job finished: the completion message on the shared channel, and the
 * job-state read at the waiter's deadline that covers a lost message (a reconnect, a subscriber
 * that was not listening yet). Real JobProducers ("gateways") and real BullMQ workers on real Redis.
 */
describe('job completion: the shared channel and the safety net at the deadline', () => {
  const keyPrefix = `test-${randomUUID()}`;
  const connections: Redis[] = [];
  const producers: JobProducer[] = [];
  const workers: Worker<InferJobData, InferJobResult>[] = [];
  /** Every message seen on the completion channel, as a third party listening to it. */
  const heard: CompletionMessage[] = [];
  let spy: Redis;
  let commands: Redis;

  const connect = async (name: string, blocking = false) => {
    const redis = createRedis(REDIS_URL, { name, blocking });
    connections.push(redis);
    await redisReady(redis, REDIS_URL);
    return redis;
  };

  /** A gateway's producer, wired as src/gateway/wiring.ts does, subscribed before it is used. */
  const gateway = async () => {
    const producer = new JobProducer({
      redis: await connect('test-gateway'),
      subscriber: await connect('test-gateway-sub', true),
      keyPrefix,
      retentionS: 60,
      maxDepth: () => 1_000,
      logger: pino({ level: 'silent' }),
    });
    await producer.start();
    producers.push(producer);
    return producer;
  };

  /** A worker for `skill`; it publishes on the shared channel only when `publish` is set. */
  const worker = async (
    skill: string,
    opts: { publish: boolean } & Pick<CompletionWorkerOptions, 'processor' | 'autorun'>,
  ) => {
    const w = startCompletionWorker({
      connection: await connect('test-worker', true),
      publisher: await connect('test-publisher'),
      keyPrefix,
      skill,
      channel: opts.publish ? () => completionChannel(keyPrefix) : undefined,
      processor: opts.processor ?? (async (job) => noopResult(job.data.requestId)),
      autorun: opts.autorun,
    });
    workers.push(w);
    return w;
  };

  const data = (skill: string, deadlineMs: number): InferJobData & { deadlineAt: number } => ({
    skill,
    requestId: randomUUID(),
    enqueuedAt: Date.now(),
    deadlineAt: Date.now() + deadlineMs,
    item: { text: 'hello', task: 'tokens', maxTokens: 0, modelVersion: '' },
  });

  /** Messages heard for job `id`. */
  const heardFor = (id: string) => heard.filter((m) => m.id === id);

  before(async () => {
    commands = await connect('test-commands');
    spy = await connect('test-spy', true);
    spy.on('message', (_channel: string, message: string) => heard.push(JSON.parse(message) as CompletionMessage));
    await spy.subscribe(completionChannel(keyPrefix));
  });

  after(async () => {
    await Promise.allSettled(workers.map((w) => w.close(true)));
    await Promise.allSettled(producers.map((p) => p.close()));
    await Promise.allSettled(connections.map(closeRedis));
    await deleteKeys(keyPrefix);
  });

  it('answers with the result at the deadline when the completion message was lost', async () => {
    const w = await worker('lost', { publish: false });
    await w.waitUntilReady();
    const producer = await gateway();
    const job = data('lost', 500);
    const completed = new Promise<string>((resolve) => w.once('completed', (j) => resolve(j.id!)));

    const result = await producer.run(job, { priority: 1 });

    assert.deepEqual(result, noopResult(job.requestId));
    assert.deepEqual(heardFor(await completed), [], 'nothing was published: the job-state read answered');
    assert.equal(producer.pending(), 0);
  });

  it("answers with the failed job's own error at the deadline when the message was lost", async () => {
    const reason = `the skill fell over ${randomUUID()}`;
    const w = await worker('lost-failure', {
      publish: false,
      processor: async () => {
        throw new AppError('SKILL_UNAVAILABLE', reason);
      },
    });
    await w.waitUntilReady();
    const producer = await gateway();

    await assert.rejects(producer.run(data('lost-failure', 500), { priority: 1 }), (err: unknown) => {
      assert.ok(err instanceof AppError, String(err));
      assert.equal(err.code, 'SKILL_UNAVAILABLE');
      assert.equal(err.message, reason);
      return true;
    });
    assert.equal(producer.pending(), 0);
  });

  it('resolves two gateways waiting on one job from its one completion message', async () => {
    const skill = 'shared';
    const w = await worker(skill, { publish: true, autorun: false });
    const [a, b] = [await gateway(), await gateway()];
    const id = `c-${randomUUID()}`;
    const job = data(skill, 5_000);

    // Identical requests on two gateways: the same coalesce id, so the second add finds the first job.
    const answers = Promise.all([
      a.run(job, { coalesceId: id, priority: 1 }),
      b.run(job, { coalesceId: id, priority: 1 }),
    ]);
    // (assert.ok with a message of its own: without one, node parses the source to write it, slowly.)
    await eventually(async () => assert.ok(await addedAndDuplicated(skill, id), 'both adds are in'), {
      intervalMs: 20,
    });
    void w.run();

    // Both adds found the job waiting and both deadlines are 5 s away: the message answered both.
    assert.deepEqual(await answers, [noopResult(job.requestId), noopResult(job.requestId)]);
    // The spy's copy of the message may trail the gateways' own.
    await eventually(async () => assert.ok(heardFor(id).length > 0, 'the spy heard the message'), { intervalMs: 20 });
    assert.equal(heardFor(id).length, 1);
    assert.equal(a.pending() + b.pending(), 0);
  });

  it('answers 504 DEADLINE_EXCEEDED when the job is still queued at the deadline', async () => {
    const producer = await gateway();

    await assert.rejects(producer.run(data('nobody-serves-this', 300), { priority: 1 }), (err: unknown) => {
      assert.ok(err instanceof AppError, String(err));
      assert.equal(err.code, 'DEADLINE_EXCEEDED');
      assert.equal(err.status, 504);
      return true;
    });
    assert.equal(producer.pending(), 0);
  });

  it('answers a coalesced job with its result at the deadline when the message was lost', async () => {
    const w = await worker('lost-coalesced', { publish: false });
    await w.waitUntilReady();
    const producer = await gateway();
    const job = data('lost-coalesced', 500);

    const result = await producer.run(job, { coalesceId: `c-${randomUUID()}`, priority: 1 });

    assert.deepEqual(result, noopResult(job.requestId));
    assert.equal(producer.pending(), 0);
  });

  it('keeps waiting for a request whose own deadline has not come when an identical one times out', async () => {
    const skill = 'mixed-deadlines';
    const w = await worker(skill, { publish: true, autorun: false });
    const producer = await gateway();
    const id = `c-${randomUUID()}`;
    const patientJob = data(skill, 5_000);
    const patient = producer.run(patientJob, { coalesceId: id, priority: 1 });
    patient.catch(() => undefined);

    await assert.rejects(producer.run(data(skill, 300), { coalesceId: id, priority: 1 }), {
      code: 'DEADLINE_EXCEEDED',
    });
    assert.equal(producer.pending(), 1, 'the patient request still waits');
    void w.run();

    // The job was added with the patient request's data (its add came first).
    assert.deepEqual(await patient, noopResult(patientJob.requestId));
  });

  it('runs a shared job again for a request with time left when it expired on an earlier request’s deadline', async () => {
    const skill = 'expired-shared-job';
    let attempts = 0;
    // As the dispatcher does: a job whose deadline has passed is dropped unread.
    const w = await worker(skill, {
      publish: true,
      autorun: false,
      processor: async (job) => {
        attempts += 1;
        if ((job.data.deadlineAt ?? Infinity) <= Date.now()) throw new AppError('DEADLINE_EXCEEDED');
        return noopResult(job.data.requestId);
      },
    });
    const producer = await gateway();
    const id = `c-${randomUUID()}`;
    const hasty = producer.run(data(skill, 300), { coalesceId: id, priority: 1 });
    // The hasty request's add comes first, so the shared job carries its deadline.
    const jobKey = `${queuePrefix(keyPrefix, skill)}:${skill}:${id}`;
    await eventually(async () => assert.equal(await commands.exists(jobKey), 1, 'the hasty add is in'), {
      intervalMs: 20,
    });
    const patientJob = data(skill, 10_000);
    const patient = producer.run(patientJob, { coalesceId: id, priority: 1 });
    patient.catch(() => undefined);
    await assert.rejects(hasty, { code: 'DEADLINE_EXCEEDED' });
    void w.run();

    // The shared job carried the hasty deadline and was dropped; the patient request queued it again.
    assert.deepEqual(await patient, noopResult(patientJob.requestId));
    assert.equal(attempts, 2);
    assert.equal(producer.pending(), 0);
  });

  it('shares a finished job with a request that arrived while it ran, not with one that came after', async () => {
    const skill = 'late-joiners';
    let runs = 0;
    const w = await worker(skill, {
      publish: true,
      processor: async (job) => {
        runs += 1;
        return noopResult(`${job.data.requestId} run ${runs}`);
      },
    });
    await w.waitUntilReady();
    const producer = await gateway();
    const id = `c-${randomUUID()}`;
    const first = data(skill, 5_000);
    const arrivedBefore = Date.now();
    const firstResult = await producer.run(first, { coalesceId: id, priority: 1 });

    // Arrived while the job ran, reached Redis after it finished (its add is then a no-op that
    // publishes nothing): it reads the finished job's result, the model does not run again.
    const straggler = await producer.run(data(skill, 5_000), { coalesceId: id, arrivedAt: arrivedBefore, priority: 1 });
    assert.deepEqual(straggler, firstResult);
    assert.equal(runs, 1, 'the straggler joined');

    // Arrived after it finished: a new request, computed afresh although the old job is still kept.
    const later = data(skill, 5_000);
    const laterResult = await producer.run(later, { coalesceId: id, priority: 1 });
    assert.deepEqual(laterResult, noopResult(`${later.requestId} run 2`));
    assert.equal(runs, 2, 'computed again');
    assert.equal(producer.pending(), 0);
  });

  /** Whether the queue's events stream shows job `id` added and then added again (found existing). */
  async function addedAndDuplicated(skill: string, id: string): Promise<boolean> {
    const entries = await commands.xrange(`${queuePrefix(keyPrefix, skill)}:${skill}:events`, '-', '+');
    const events = entries
      .map(([, fields]) => Object.fromEntries(pairs(fields)))
      .filter((e) => e.jobId === id)
      .map((e) => e.event);
    return events.includes('added') && events.includes('duplicated');
  }
});

function pairs(fields: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) out.push([fields[i]!, fields[i + 1]!]);
  return out;
}
