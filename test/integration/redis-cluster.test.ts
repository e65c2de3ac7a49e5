import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import type { Config } from '../../src/config/index.js';
import { closeRedis, describeRedis, openRedis, type RedisClient, redisReady } from '../../src/lib/redis.js';
import { keyHolders } from '../../src/lib/redis-scan.js';
import { queuePrefix } from '../../src/queue/job.js';
import { http, type HttpResult, startTestCluster } from '../helpers/cluster.js';
import { eventually, REDIS_URL, testConfig } from '../helpers/env.js';
import { type FakeOpenAi, startFakeOpenAi } from '../helpers/fake-openai.js';
import { createKeys } from '../helpers/keys.js';
import { RedisClusterServers } from '../helpers/redis-cluster-servers.js';

const slotOf = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;
const noStore = { 'cache-control': 'no-store' };

/**
 * The whole cluster (nginx, two gateways, a dispatcher, the nlp skill) on a real Redis Cluster of
 * the test's own — three masters, three replicas, AOF — through REDIS_CLUSTER_NODES; then a master
 * fails over while requests keep coming.
 */
describe('on a Redis Cluster (3 masters + 3 replicas)', () => {
  let servers: RedisClusterServers;
  let cluster: Awaited<ReturnType<typeof startTestCluster>>;
  let config: Config;
  let cleanup: (() => Promise<void>) | undefined;
  let keys: Record<string, { authorization: string }>;
  let redis: RedisClient;
  let fake: FakeOpenAi;
  const infer = (key: { authorization: string }, input: string, headers: Record<string, string> = {}) =>
    http(`${cluster.endpoint}/v1/skills/nlp/infer`, {
      json: { input, task: 'sentiment' },
      headers: { ...key, ...headers },
    });
  const submit = (input: string) =>
    http(`${cluster.endpoint}/v1/jobs`, { json: { skill: 'nlp', input, task: 'sentiment' }, headers: keys.main });
  const job = (id: string) => http(`${cluster.endpoint}/v1/jobs/${id}`, { headers: keys.main });

  before(async () => {
    servers = await RedisClusterServers.start();
    fake = await startFakeOpenAi(['tiny-llm']);
    const t = await testConfig({
      REDIS_CLUSTER_NODES: servers.seeds,
      // Only its scheme and credentials count with REDIS_CLUSTER_NODES; its host is not used.
      REDIS_URL: 'redis://127.0.0.1:1',
      // Preflight checks that every master keeps an AOF.
      REDIS_PERSISTENCE: 'require',
      REDIS_BREAKER_RESET_MS: '500',
      SKILLS: 'nlp,openai',
      // Every request through the queue (and streamed tokens through Redis), never the idle bypass.
      QUEUE_BYPASS_WHEN_IDLE: 'false',
      OPENAI_BASE_URL: fake.url,
      OPENAI_MODEL: 'tiny-llm',
      RATE_LIMITS: 'free=4,standard=100000,premium=100000',
      RATE_LIMIT_WINDOW_S: '3600',
      // Room for a dispatcher restart (coalescing) on a busy shared machine: many seconds under tsx.
      REQUEST_TIMEOUT_MS: '30000',
    });
    config = t.config;
    cleanup = t.cleanup;
    cluster = await startTestCluster(t.config, t.env);
    keys = await createKeys(config, {
      main: { tenant: 'acme', tier: 'premium' },
      free: { tenant: 'acme', tier: 'free' },
    });
    redis = openRedis(config, { name: 'test-observer' });
    await redisReady(redis, describeRedis(config));
  });

  after(async () => {
    if (redis) await closeRedis(redis);
    await cluster?.stop();
    await servers?.destroy();
    await fake?.close();
    await cleanup?.();
  });

  it('infers through the queue, then answers from the cache; the keys are in the cluster, none on the single Redis', async () => {
    // Right after start-up on a busy machine, a first answer may come the degraded way (a hot-path
    // read over its 250 ms bound): the point is that answers go through the queue on the cluster.
    const { input, first } = await eventually(async () => {
      const input = `A bright and cheerful morning ${randomUUID()}`;
      const first = await infer(keys.main!, input);
      assert.equal(first.status, 200, first.text);
      assert.equal(first.headers.get('x-cache'), 'MISS');
      assert.equal(first.headers.get('x-degraded'), null, 'through the queue, not the degraded path');
      return { input, first };
    });
    const second = await infer(keys.main!, input);
    assert.equal(second.status, 200, second.text);
    assert.equal(second.headers.get('x-cache'), 'HIT');
    assert.deepEqual(second.body.output, first.body.output);

    // The nlp queue's keys, all in one slot of the cluster.
    const queueKeys = await keysLike(`${queuePrefix(config.KEY_PREFIX, 'nlp')}:nlp:*`);
    assert.ok(queueKeys.length > 0, 'the queue lives in the cluster');
    assert.equal(new Set(queueKeys.map(slotOf)).size, 1, queueKeys.join(', '));
    assert.ok((await keysLike(`${config.KEY_PREFIX}:cache:*`)).length > 0, 'the cache entry too');
    const single = new Redis(REDIS_URL);
    try {
      const [, onSingle] = await single.scan('0', 'MATCH', `${config.KEY_PREFIX}:*`, 'COUNT', 100_000);
      assert.deepEqual(onSingle, [], 'nothing on the machine’s own Redis');
    } finally {
      single.disconnect();
    }
  });

  it('holds the rate limit for the cluster: 429 RATE_LIMITED past the tier', async () => {
    const statuses: number[] = [];
    let refused: HttpResult | undefined;
    for (let i = 0; i < 7; i++) {
      const res = await infer(keys.free!, `limit me ${randomUUID()}`, noStore);
      statuses.push(res.status);
      if (res.status === 429) refused = res;
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429, 429]);
    assert.equal(refused?.body.error.code, 'RATE_LIMITED');
  });

  it('accepts an async job (202) and answers it completed', async () => {
    const res = await submit(`An async job ${randomUUID()}`);
    assert.equal(res.status, 202, res.text);
    const done = await finished([res.body.id]);
    assert.equal(done[0]!.body.status, 'completed', done[0]!.text);
    assert.equal(typeof done[0]!.body.output.score, 'number');
  });

  it('streams a chat completion token by token (each job its own stream slot)', async () => {
    const client = new OpenAI({
      apiKey: keys.main!.authorization.slice('Bearer '.length),
      baseURL: `${cluster.endpoint}/v1`,
      maxRetries: 0,
    });
    await eventually(async () => assert.ok((await client.models.list()).data.some((m) => m.id === 'tiny-llm')));
    fake.script({ kind: 'ok', tokenDelayMs: 20 });
    const input = `one two three ${randomUUID()}`;
    const stream = await client.chat.completions.create({
      model: 'tiny-llm',
      messages: [{ role: 'user', content: input }],
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, `echo: ${input}`);
  });

  it('runs the model once for identical requests in flight (coalescing)', async () => {
    // A slow deterministic generation (temperature 0): the identical requests arrive while it runs.
    fake.script({ kind: 'ok', delayMs: 1_500 });
    const before = fake.generations().length;
    const body = {
      model: 'tiny-llm',
      messages: [{ role: 'user', content: `coalesce ${randomUUID()}` }],
      temperature: 0,
    };
    const answers = await Promise.all(
      Array.from({ length: 8 }, () =>
        http(`${cluster.endpoint}/v1/chat/completions`, { json: body, headers: { ...keys.main, ...noStore } }),
      ),
    );
    assert.ok(
      answers.every((a) => a.status === 200),
      answers.map((a) => a.text).join('\n'),
    );
    assert.equal(new Set(answers.map((a) => a.body.choices[0].message.content)).size, 1);
    assert.equal(fake.generations().length - before, 1, 'one generation upstream for all eight');
  });

  it("keeps answering through a failover of the queue's master, and loses no accepted job", async (t) => {
    type Sent = { at: number; kind: 'infer' | 'job'; status: number; code?: string };
    const sent: Sent[] = [];
    const accepted: string[] = [];
    let stop = false;
    let n = 0;
    // Four clients, one request at a time each: half inferences that need the queue, half async jobs.
    const client = async () => {
      while (!stop) {
        const at = Date.now();
        const kind = n++ % 2 === 0 ? 'infer' : 'job';
        const res =
          kind === 'infer'
            ? await infer(keys.main!, `during the failover ${randomUUID()}`, noStore)
            : await submit(`a job during the failover ${randomUUID()}`);
        if (res.status === 202) accepted.push(res.body.id as string);
        sent.push({ at, kind, status: res.status, code: res.body?.error?.code });
      }
    };
    const clients = Array.from({ length: 4 }, client);
    const until = (count: number) => eventually(async () => assert.ok(sent.length >= count), { timeoutMs: 60_000 });

    const ok = (s: Sent) => s.status === 200 || s.status === 202;
    const slot = slotOf(queuePrefix(config.KEY_PREFIX, 'nlp'));
    let failoverAt = 0;
    let failedOverAt = 0;
    let moved = { from: 0, to: 0 };
    try {
      await until(40);
      failoverAt = Date.now();
      moved = await servers.failover(slot);
      failedOverAt = Date.now();
      assert.equal((await servers.shard(slot)).master.port, moved.to, 'the replica serves the queue now');
      // Keep going until the last 120 requests since the failover have all succeeded.
      await eventually(
        async () => {
          const tail = sent.filter((s) => s.at >= failedOverAt).slice(-120);
          assert.ok(tail.length === 120 && tail.every(ok), `${tail.filter(ok).length} of the last ${tail.length}`);
        },
        { timeoutMs: 120_000, intervalMs: 200 },
      );
    } finally {
      stop = true;
      await Promise.all(clients);
    }

    const failures = sent.filter((s) => !ok(s));
    const lastFailure = Math.max(0, ...failures.map((s) => s.at));
    t.diagnostic(
      `failover ${moved.from} → ${moved.to} took ${failedOverAt - failoverAt} ms; ${sent.length} requests, ` +
        `${failures.length} not answered (${[...new Set(failures.map((f) => `${f.status} ${f.code}`))].join(', ') || 'none'})` +
        (failures.length ? `, the last ${lastFailure - failoverAt} ms after the failover began` : ''),
    );
    // A blip, if any, is the API's "try again" (503 with a code), never a 500 or a hang.
    for (const f of failures) assert.ok(f.status === 503 || f.status === 504, `${f.kind}: ${f.status} ${f.code}`);
    assert.ok(
      failures.every((f) => f.at >= failoverAt - 1_000),
      'nothing failed before the failover',
    );

    // Every job accepted before, during and after the failover finishes, completed.
    const views = await finished(accepted);
    assert.deepEqual(
      views.filter((v) => v.body.status !== 'completed').map((v) => v.text),
      [],
      `all ${accepted.length} accepted jobs completed`,
    );
  });

  /** Keys matching `pattern` on every master. */
  async function keysLike(pattern: string): Promise<string[]> {
    const out: string[] = [];
    for (const node of keyHolders(redis)) {
      let cursor = '0';
      do {
        const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        out.push(...found);
      } while (cursor !== '0');
    }
    return out;
  }

  /** Waits for every job to reach a final state; returns each one's final view. */
  async function finished(ids: string[]): Promise<HttpResult[]> {
    return eventually(
      async () => {
        const views: HttpResult[] = [];
        // A few at a time: there may be hundreds.
        for (let i = 0; i < ids.length; i += 20) views.push(...(await Promise.all(ids.slice(i, i + 20).map(job))));
        for (const v of views) assert.ok(['completed', 'failed'].includes(v.body?.status), `${v.status} ${v.text}`);
        return views;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
  }
});
