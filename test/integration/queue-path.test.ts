import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Config } from '../../src/config/index.js';
import { queuePrefix } from '../../src/queue/job.js';
import { http, startTestCluster } from '../helpers/cluster.js';
import { eventually, REDIS_URL, testConfig } from '../helpers/env.js';
import { createKeys } from '../helpers/keys.js';
import { skillItemsComputed } from '../helpers/skill-metrics.js';

describe('the queue path: coalescing, deadlines, overload, async jobs, stalled-job recovery', () => {
  let cluster: Awaited<ReturnType<typeof startTestCluster>>;
  let config: Config;
  let cleanup: () => Promise<void>;
  let keys: Record<string, { authorization: string }>;
  const dispatcher = () => cluster.processes.find((p) => p.spec.name === 'dispatcher-1')!;
  const infer = (key: { authorization: string }, body: object, headers: Record<string, string> = {}) =>
    http(`${cluster.endpoint}/v1/skills/nlp/infer`, { json: body, headers: { ...key, ...headers } });
  const submit = (key: { authorization: string }, body: object, headers: Record<string, string> = {}) =>
    http(`${cluster.endpoint}/v1/jobs`, { json: { skill: 'nlp', ...body }, headers: { ...key, ...headers } });
  const getJob = (key: { authorization: string }, id: string) =>
    http(`${cluster.endpoint}/v1/jobs/${id}`, { headers: key });

  before(async () => {
    // These tests hold requests in the queue (a stopped dispatcher): no idle bypass around it.
    const t = await testConfig({
      RATE_LIMITS: 'free=100000,standard=100000,premium=100000',
      QUEUE_BYPASS_WHEN_IDLE: 'false',
    });
    config = t.config;
    cleanup = t.cleanup;
    cluster = await startTestCluster(t.config, t.env);
    keys = await createKeys(config, {
      a: { tenant: 'acme', tier: 'premium' },
      b: { tenant: 'globex', tier: 'free' },
    });
  });

  after(async () => {
    await cluster?.stop();
    await cleanup?.();
  });

  it('runs the model once for 20 identical requests in flight on both gateways', async () => {
    await dispatcher().stop(5_000);
    const before = await skillItemsComputed(config.KEY_PREFIX, 'nlp');
    const input = `Coalesce me, please ${randomUUID()}`;
    const pending = Array.from({ length: 20 }, () => infer(keys.a!, { input }, { 'cache-control': 'no-store' }));
    await new Promise((r) => setTimeout(r, 500));
    dispatcher().start();
    const answers = await Promise.all(pending);
    assert.ok(
      answers.every((a) => a.status === 200),
      answers.map((a) => a.text).join('\n'),
    );
    assert.equal(new Set(answers.map((a) => JSON.stringify(a.body.output))).size, 1);
    assert.equal(new Set(answers.map((a) => a.headers.get('x-served-by'))).size, 2, 'both gateways waited');
    assert.equal((await skillItemsComputed(config.KEY_PREFIX, 'nlp')) - before, 1);
  });

  it('computes afresh for an identical request that arrives after the job finished', async () => {
    const input = `Arrive later ${randomUUID()}`;
    const noStore = { 'cache-control': 'no-store' };
    const before = await skillItemsComputed(config.KEY_PREFIX, 'nlp');
    const first = await infer(keys.a!, { input }, noStore);
    // The finished job is still in Redis (kept for requests that arrived while it ran), so
    // adding its id again is a no-op: the gateway must see that and queue a fresh job.
    const second = await infer(keys.a!, { input }, noStore);
    assert.equal(first.status, 200, first.text);
    assert.equal(second.status, 200, second.text);
    assert.deepEqual(second.body.output, first.body.output);
    assert.equal((await skillItemsComputed(config.KEY_PREFIX, 'nlp')) - before, 2);
  });

  it('answers 504 DEADLINE_EXCEEDED when the deadline passes in the queue, and drops the job', async () => {
    await dispatcher().stop(5_000);
    try {
      const res = await infer(keys.a!, { input: `late ${randomUUID()}`, deadline_ms: 300 });
      assert.equal(res.status, 504, res.text);
      assert.equal(res.body.error.code, 'DEADLINE_EXCEEDED');
      const header = await infer(keys.a!, { input: `late ${randomUUID()}` }, { 'x-deadline-ms': '200' });
      assert.equal(header.body.error.code, 'DEADLINE_EXCEEDED');
      const bad = await infer(keys.a!, { input: 'x' }, { 'x-deadline-ms': 'soon' });
      assert.equal(bad.status, 400);
      const tooLong = await infer(keys.a!, { input: 'x', deadline_ms: 10_000_000 });
      assert.equal(tooLong.status, 400);
      assert.match(tooLong.body.error.message, /^deadline_ms:/);
    } finally {
      dispatcher().start();
    }
    const before = await skillItemsComputed(config.KEY_PREFIX, 'nlp');
    await eventually(async () => {
      const q = new Queue('nlp', { connection: { url: REDIS_URL }, prefix: queuePrefix(config.KEY_PREFIX, 'nlp') });
      try {
        const counts = await q.getJobCounts('waiting', 'prioritized', 'active');
        assert.equal(counts.waiting! + counts.prioritized! + counts.active!, 0);
      } finally {
        await q.close();
      }
    });
    assert.equal(await skillItemsComputed(config.KEY_PREFIX, 'nlp'), before, 'expired jobs never reached the model');
  });

  it('accepts async jobs at once and shows them only to their tenant', async () => {
    const sub = await submit(keys.a!, { input: 'What a wonderful surprise!', task: 'sentiment' });
    assert.equal(sub.status, 202, sub.text);
    const id = sub.body.id as string;
    assert.equal(sub.headers.get('location'), `/v1/jobs/${id}`);
    assert.match(id, /^nlp\.a-/);
    const done = await eventually(async () => {
      const r = await getJob(keys.a!, id);
      assert.equal(r.body.status, 'completed', r.text);
      return r;
    });
    assert.equal(done.body.output.label, 'positive');
    assert.ok(done.body.started_at && done.body.finished_at);
    assert.equal(typeof done.body.timings.queueMs, 'number');
    const other = await getJob(keys.b!, id);
    assert.equal(other.status, 404);
    assert.equal(other.body.error.code, 'JOB_NOT_FOUND');
    for (const bad of ['nope', 'nlp.', 'nlp.x', '..', 'nlp.a-../../etc', encodeURIComponent("nlp.a-'; DROP")]) {
      assert.equal((await getJob(keys.a!, bad)).status, 404, bad);
    }
    const noSkill = await http(`${cluster.endpoint}/v1/jobs`, { json: { input: 'x' }, headers: keys.a! });
    assert.equal(noSkill.status, 400);
    assert.equal(noSkill.body.error.code, 'BAD_REQUEST');
  });

  it('makes a retried submit with the same Idempotency-Key return the same job', async () => {
    const key = `retry-${randomUUID()}`;
    const first = await submit(keys.a!, { input: 'Same request twice.' }, { 'idempotency-key': key });
    const again = await submit(keys.a!, { input: 'Same request twice.' }, { 'idempotency-key': key });
    assert.equal(first.status, 202);
    assert.equal(again.status, 200);
    assert.equal(again.body.id, first.body.id);
    const reused = await submit(keys.a!, { input: 'A different request.' }, { 'idempotency-key': key });
    assert.equal(reused.status, 409);
    assert.equal(reused.body.error.code, 'IDEMPOTENCY_KEY_REUSED');
    const otherTenant = await submit(keys.b!, { input: 'Same request twice.' }, { 'idempotency-key': key });
    assert.equal(otherTenant.status, 202, 'keys are per tenant');
    assert.notEqual(otherTenant.body.id, first.body.id);
    assert.equal((await submit(keys.a!, { input: 'x' }, { 'idempotency-key': 'é' })).status, 400);
  });
});

describe('a dispatcher killed mid-work', () => {
  let cluster: Awaited<ReturnType<typeof startTestCluster>>;
  let config: Config;
  let cleanup: () => Promise<void>;
  let keys: Record<string, { authorization: string }>;
  const dispatcher = () => cluster.processes.find((p) => p.spec.name === 'dispatcher-1')!;
  const submit = (key: { authorization: string }, body: object) =>
    http(`${cluster.endpoint}/v1/jobs`, { json: { skill: 'nlp', ...body }, headers: key });
  const getJob = (key: { authorization: string }, id: string) =>
    http(`${cluster.endpoint}/v1/jobs/${id}`, { headers: key });

  before(async () => {
    const t = await testConfig({
      WORKER_LOCK_MS: '2000',
      WORKER_STALLED_CHECK_MS: '1000',
      GATEWAY_COUNT: '1',
      QUEUE_BYPASS_WHEN_IDLE: 'false',
    });
    config = t.config;
    cleanup = t.cleanup;
    cluster = await startTestCluster(t.config, t.env);
    keys = await createKeys(config, { a: { tenant: 'acme', tier: 'premium' } });
  });

  after(async () => {
    await cluster?.stop();
    await cleanup?.();
  });

  it('loses no accepted job when the dispatcher is killed mid-work', async () => {
    const n = 300;
    const ids: string[] = [];
    // Queue everything first, so the dispatcher is surely mid-work when it is killed.
    await dispatcher().stop(5_000);
    for (let i = 0; i < n; i++) {
      const r = await submit(keys.a!, { input: `Job number ${i}: ${randomUUID()}`, task: 'tokens' });
      assert.equal(r.status, 202, r.text);
      ids.push(r.body.id);
    }
    const statuses = async () => Promise.all(ids.map(async (id) => (await getJob(keys.a!, id)).body.status as string));
    dispatcher().start();
    // Kill it once it has started on the work, and well before it has finished.
    const atKill = await eventually(
      async () => {
        const s = await statuses();
        assert.ok(
          s.some((x) => x !== 'queued'),
          `${cluster.events.join('\n')} ${readFileSync(`${config.RUN_DIR}/logs/dispatcher-1.log`, 'utf8').slice(-1500)}`,
        );
        return s;
      },
      { intervalMs: 5, timeoutMs: 30_000 },
    );
    process.kill(dispatcher().pid!, 'SIGKILL');
    const done = atKill.filter((x) => x === 'completed').length;
    assert.ok(done < n / 2, `too late to kill: ${done} of ${n} done`);
    await eventually(
      async () => {
        const s = await statuses();
        assert.equal(s.filter((x) => x === 'failed').length, 0);
        assert.equal(s.filter((x) => x === 'completed').length, n);
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  });
});

describe('a full queue', () => {
  let cluster: Awaited<ReturnType<typeof startTestCluster>>;
  let cleanup: () => Promise<void>;
  let key: { authorization: string };
  const overloadedDispatcher = () => cluster.processes.find((p) => p.spec.name === 'dispatcher-1')!;
  const inferOn = (body: object) => http(`${cluster.endpoint}/v1/skills/nlp/infer`, { json: body, headers: key });

  before(async () => {
    const t = await testConfig({ QUEUE_DEPTHS: 'nlp=5', GATEWAY_COUNT: '1', QUEUE_BYPASS_WHEN_IDLE: 'false' });
    cleanup = t.cleanup;
    cluster = await startTestCluster(t.config, t.env);
    ({ key } = (await createKeys(t.config, { key: { tenant: 'acme', tier: 'premium' } })) as {
      key: { authorization: string };
    });
  });

  after(async () => {
    await cluster?.stop();
    await cleanup?.();
  });

  it('refuses with 503 OVERLOADED and a Retry-After beyond the queue depth limit', async () => {
    await overloadedDispatcher().stop(5_000);
    const waiting: Promise<unknown>[] = [];
    let refused: Awaited<ReturnType<typeof inferOn>> | undefined;
    try {
      for (let i = 0; i < 30 && !refused; i++) {
        const p = inferOn({ input: `queued ${randomUUID()}`, deadline_ms: 20_000 });
        waiting.push(p);
        const raced = await Promise.race([p, new Promise((r) => setTimeout(() => r(undefined), 150))]);
        if (raced && (raced as Awaited<typeof p>).status === 503) refused = raced as Awaited<typeof p>;
      }
    } finally {
      overloadedDispatcher().start();
    }
    assert.ok(refused, 'some request was refused');
    assert.equal(refused.body.error.code, 'OVERLOADED');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    await Promise.all(waiting);
  });
});

describe('priorities in a real BullMQ queue', () => {
  it('serves premium first, yet ages free work in and keeps a flooding tenant from monopolising', async () => {
    const { priorityFor } = await import('../../src/queue/priority.js');
    const prefix = `test-${randomUUID()}`;
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const queue = new Queue('prio', { connection, prefix });
    const { Worker } = await import('bullmq');
    try {
      const now = Date.now();
      const add = (name: string, tier: 'premium' | 'standard' | 'free', backlog: number, at = now) =>
        queue.add(name, {}, { priority: priorityFor({ tier, tenantBacklog: backlog, now: at }) });
      await add('free-old', 'free', 0, now - 6_000); // waited longer than the free tier's 5 s gap
      for (let i = 0; i < 300; i++) await add(`flood-${i}`, 'premium', i); // one tenant floods
      await add('standard-new', 'standard', 0);
      await add('free-new', 'free', 0);
      const order: string[] = [];
      const worker = new Worker('prio', async (job) => void order.push(job.name), {
        connection,
        prefix,
        concurrency: 1,
      });
      await eventually(async () => assert.equal(order.length, 303), { timeoutMs: 30_000 });
      await worker.close();
      assert.equal(order[0], 'free-old', 'aging: old free work goes before new premium work');
      assert.ok(order.indexOf('flood-0') < order.indexOf('standard-new'), 'premium first');
      assert.ok(order.indexOf('standard-new') < order.indexOf('free-new'));
      assert.ok(order.indexOf('free-new') < order.indexOf('flood-299'), "the flood's tail waits behind others");
      assert.ok(order.indexOf('standard-new') < order.indexOf('flood-100'));
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      connection.disconnect();
    }
  });
});
