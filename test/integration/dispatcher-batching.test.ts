import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { Config } from '../../src/config/index.js';
import { closeRedis, createRedis } from '../../src/lib/redis.js';
import { createDispatcher, type Dispatcher } from '../../src/queue/dispatcher.js';
import {
  type CompletionMessage,
  completionChannel,
  type InferJobData,
  type InferJobResult,
  queuePrefix,
} from '../../src/queue/job.js';
import { createNlpBackend } from '../../src/skills/backends/nlp/index.js';
import { SkillClientPool } from '../../src/skills/client-pool.js';
import { CachedRegistry, SkillRegistry } from '../../src/skills/registry.js';
import { startTestSkill, type TestSkill } from '../helpers/skill.js';
import { eventually, REDIS_URL, testConfig } from '../helpers/env.js';

const positive = (i: number) => `I love this wonderful sunny city, visit number ${i}.`;
const negative = (i: number) => `I hate this terrible awful place, visit number ${i}.`;

/**
 * The dispatcher's batching against a real nlp skill over gRPC, real Redis and BullMQ: jobs are
 * put on the queue directly, so items the gateway would refuse (an empty text) reach the skill.
 */
describe('dispatcher batching against a real skill', () => {
  let config: Config;
  let cleanup: () => Promise<void>;
  let redis: Redis;
  let workerConnection: Redis;
  let subscriber: Redis;
  let pool: SkillClientPool;
  let dispatcher: Dispatcher;
  const metrics = new Registry();
  const servers: TestSkill[] = [];
  const queues = new Map<string, Queue<InferJobData>>();
  const done = new Map<string, CompletionMessage>();

  async function serve(name: string): Promise<void> {
    servers.push(await startTestSkill({ name, announceIn: config }));
  }

  async function announce(
    name: string,
    address: string,
    descriptor: ReturnType<ReturnType<typeof createNlpBackend>['describe']>,
  ) {
    const registry = new SkillRegistry(redis, config.KEY_PREFIX);
    await registry.announce({ name, ...descriptor, address, instance: name, startedAt: Date.now() }, 120_000);
  }

  /** Puts the jobs on the skill's queue in one round trip and waits for every completion. */
  async function run(skill: string, items: InferJobData['item'][]): Promise<CompletionMessage[]> {
    let queue = queues.get(skill);
    if (!queue) {
      queue = new Queue<InferJobData>(skill, { connection: redis, prefix: queuePrefix(config.KEY_PREFIX, skill) });
      queues.set(skill, queue);
    }
    const ids = items.map(() => randomUUID());
    await queue.addBulk(
      items.map((item, i) => ({
        name: 'infer',
        data: { skill, requestId: ids[i]!, enqueuedAt: Date.now(), item },
        opts: { jobId: ids[i]!, attempts: 1 },
      })),
    );
    return eventually(
      async () => {
        const out = ids.map((id) => done.get(id));
        if (out.some((m) => !m)) throw new Error(`${out.filter(Boolean).length}/${ids.length} jobs finished`);
        return out as CompletionMessage[];
      },
      { timeoutMs: 30_000, intervalMs: 50 },
    );
  }

  const item = (text: string, task = 'sentiment'): InferJobData['item'] => ({
    text,
    task,
    maxTokens: 0,
    modelVersion: '',
  });
  const result = (m: CompletionMessage): InferJobResult => {
    assert.ok(m.ok, JSON.stringify(m));
    return m.result;
  };

  before(async () => {
    // nlp batches up to 8 and waits up to 2 s for them, so a batch of 8 is formed by size alone;
    // `dead` (a replica that is not there) batches 3; `solo` does not batch.
    // These tests pin the size and delay rules: the first job of a burst waits for company too.
    const t = await testConfig({ BATCH_OVERRIDES: 'nlp=8:2000,dead=3:2000,solo=1', BATCH_FLUSH_WHEN_IDLE: 'false' });
    config = t.config;
    cleanup = t.cleanup;
    redis = createRedis(REDIS_URL, { name: 'test-dispatcher' });
    workerConnection = createRedis(REDIS_URL, { name: 'test-dispatcher-worker', blocking: true });
    subscriber = createRedis(REDIS_URL, { name: 'test-completions', blocking: true });
    await subscriber.subscribe(completionChannel(config.KEY_PREFIX));
    subscriber.on('message', (_channel: string, message: string) => {
      const msg = JSON.parse(message) as CompletionMessage;
      done.set(msg.id, msg);
    });
    await serve('nlp');
    await serve('solo');
    await announce('dead', '127.0.0.1:1', createNlpBackend().describe());
    const registry = new CachedRegistry(new SkillRegistry(redis, config.KEY_PREFIX), config.REGISTRY_CACHE_MS);
    pool = new SkillClientPool(registry);
    dispatcher = createDispatcher({
      config,
      redis,
      workerConnection,
      registry,
      pool,
      logger: pino({ level: 'silent' }),
      metrics,
    });
    await dispatcher.start();
  });

  after(async () => {
    await dispatcher?.close();
    await Promise.allSettled([...queues.values()].map((q) => q.close()));
    pool?.close();
    await Promise.allSettled(servers.map((s) => s.stop(1_000)));
    await Promise.allSettled([redis, workerConnection, subscriber].filter(Boolean).map(closeRedis));
    await cleanup?.();
  });

  it('a batch with a bad item fails only that job; the others get their own results', async () => {
    const texts = [positive(1), negative(2), positive(3), '', negative(5), positive(6), negative(7), positive(8)];
    const messages = await run(
      'nlp',
      texts.map((t) => item(t)),
    );

    const bad = messages[3]!;
    assert.equal(bad.ok, false);
    assert.equal((bad as { error: { code: string } }).error.code, 'BAD_REQUEST');
    messages.forEach((m, i) => {
      if (i === 3) return;
      const r = result(m);
      assert.equal(r.timing.batchSize, 8, 'all eight went in one InferBatch');
      const out = (r.output as { json: { label: string; sentences: { text: string }[] } }).json;
      assert.equal(out.sentences[0]!.text, texts[i], `job ${i} got its own item's output`);
      assert.equal(out.label, texts[i]!.startsWith('I love') ? 'positive' : 'negative', `job ${i}`);
      assert.ok(r.timing.queueMs >= 0);
      assert.ok(r.timing.computeMs > 0);
    });
  });

  it('batches only jobs of the same task together, and a partial batch goes after the delay', async () => {
    const jobs = [item(positive(1)), item('Paris in May', 'tokens'), item(negative(2)), item('Hi there', 'tokens')];
    const messages = await run('nlp', jobs);
    const sizes = messages.map((m) => result(m).timing.batchSize);
    assert.deepEqual(sizes, [2, 2, 2, 2]);
    const tokens = (m: CompletionMessage) =>
      (result(m).output as { json: { tokens: { text: string }[] } }).json.tokens.map((t) => t.text);
    assert.deepEqual(tokens(messages[1]!), ['Paris', 'in', 'May']);
    assert.deepEqual(tokens(messages[3]!), ['Hi', 'there']);
    assert.equal((result(messages[2]!).output as { json: { label: string } }).json.label, 'negative');
  });

  it('a batch whose call fails fails each of its jobs with that error', async () => {
    const messages = await run('dead', [item('a'), item('b'), item('c')]);
    for (const m of messages) {
      assert.equal(m.ok, false);
      // The refused connection opens the replica's breaker at once: the call's own error, or the
      // breaker's when the failover pick finds it open (#12's per-replica breakers). Both are 503s.
      assert.ok(
        ['SKILL_UNAVAILABLE', 'BREAKER_OPEN'].includes((m as { error: { code: string } }).error.code),
        JSON.stringify(m),
      );
    }
  });

  it('with maxBatchSize 1 each job is its own Infer call', async () => {
    const messages = await run('solo', [item(positive(1)), item(negative(2)), item(positive(3))]);
    for (const m of messages) assert.equal(result(m).timing.batchSize, 1);
  });

  it('exports batch size, compute time, queue wait and jobs by outcome per skill', async () => {
    const text = await metrics.metrics();
    const value = (series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      assert.ok(line, `${series} in:\n${text}`);
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    assert.equal(value('skillserve_batch_size_jobs_count{skill="nlp"}'), 3, 'one batch of 8, then one per task');
    assert.equal(value('skillserve_batch_size_jobs_sum{skill="nlp"}'), 12);
    assert.equal(value('skillserve_batch_size_jobs_bucket{le="8",skill="nlp"}'), 3);
    assert.equal(value('skillserve_batch_size_jobs_bucket{le="4",skill="nlp"}'), 2);
    assert.equal(value('skillserve_batch_compute_seconds_count{skill="nlp"}'), 3);
    assert.ok(value('skillserve_batch_compute_seconds_sum{skill="nlp"}') > 0);
    assert.equal(value('skillserve_queue_wait_seconds_count{skill="nlp"}'), 12);
    assert.equal(value('skillserve_dispatcher_jobs_total{skill="nlp",outcome="completed"}'), 11);
    assert.equal(value('skillserve_dispatcher_jobs_total{skill="nlp",outcome="failed"}'), 1);
    assert.equal(value('skillserve_dispatcher_jobs_total{skill="dead",outcome="failed"}'), 3);
    assert.ok(!text.includes('skillserve_batch_size_jobs_count{skill="solo"}'), 'no batches without batching');
  });
});
