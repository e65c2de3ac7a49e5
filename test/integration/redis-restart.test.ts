import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { http, type HttpResult, startTestCluster } from '../helpers/cluster.js';
import { eventually, testConfig } from '../helpers/env.js';
import { createKeys } from '../helpers/keys.js';
import { type OwnRedisCluster, startOwnRedisCluster } from '../helpers/own-redis-cluster.js';
import { OwnRedis } from '../helpers/redis-server.js';
import { assertNoInternalError, publicRoutes, walk } from '../helpers/route-walk.js';

/**
 * Redis killed outright (SIGKILL) and started again on the same data, under a running cluster.
 * The Redis is the test's own, started with the project's redis/redis.conf (AOF), as
 * scripts/services.sh starts the machine's: never the machine's Redis, which other tests use.
 */
describe('when Redis is killed and restarted on its data', () => {
  let redis: OwnRedis;
  let cluster: OwnRedisCluster['cluster'];
  let auth: { authorization: string };
  let close: () => Promise<void>;
  const dispatcher = () => cluster.processes.find((p) => p.spec.name === 'dispatcher-1')!;
  const submit = (input: string) =>
    http(`${cluster.endpoint}/v1/jobs`, { json: { skill: 'nlp', input, task: 'sentiment' }, headers: auth });
  const job = (id: string) => http(`${cluster.endpoint}/v1/jobs/${id}`, { headers: auth });

  /** Waits for every job to finish; returns each one's final view. */
  async function finished(ids: string[]): Promise<HttpResult[]> {
    return eventually(
      async () => {
        const views = await Promise.all(ids.map(job));
        for (const v of views) assert.ok(['completed', 'failed'].includes(v.body?.status), `${v.status} ${v.text}`);
        return views;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  }

  before(async () => {
    ({ redis, cluster, auth, close } = await startOwnRedisCluster({
      REDIS_PERSISTENCE: 'require',
      REDIS_BREAKER_RESET_MS: '500',
    }));
  });
  after(() => close?.());

  it('finishes every job it accepted before the crash: none is lost, none answers 404', async () => {
    // Jobs wait in the queue: no dispatcher takes them until after the restart.
    await dispatcher().stop(5_000);
    const accepted: string[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await submit(`Accepted before the crash, number ${i}. ${randomUUID()}`);
      assert.equal(res.status, 202, res.text);
      accepted.push(res.body.id as string);
    }
    await redis.stop();
    await redis.start();
    dispatcher().start();

    const views = await finished(accepted);
    for (const v of views) {
      assert.equal(v.status, 200, v.text);
      assert.equal(v.body.status, 'completed', v.text);
      assert.equal(typeof v.body.output.score, 'number', v.text);
      assert.ok(v.body.started_at && v.body.finished_at, `consistent times: ${v.text}`);
    }
  });

  it('answers every route with a 503 and Retry-After while Redis is down, and while it comes back: never a 500', async () => {
    const known = await submit(`a job to look up ${randomUUID()}`);
    assert.equal(known.status, 202, known.text);
    await finished([known.body.id]);
    const routes = publicRoutes(cluster.endpoint, auth, { jobId: known.body.id });

    await redis.stop();
    for (const answer of await walk(routes)) assertNoInternalError(answer, 'Redis down');

    // Comes back: walk again and again while the gateways reconnect and Redis reads its AOF.
    const back = redis.start();
    let walks = 0;
    let done = false;
    void back.then(() => (done = true));
    while (!done || walks < 3) {
      for (const answer of await walk(routes)) assertNoInternalError(answer, `Redis coming back (walk ${walks})`);
      walks++;
      if (done) await new Promise((r) => setTimeout(r, 200));
    }
    await back;
  });

  it('loses no async job accepted around an outage to a momentarily absent skill', async () => {
    const accepted: string[] = [];
    const submitOne = async (label: string) => {
      const res = await submit(`${label} ${randomUUID()}`);
      if (res.status === 202) accepted.push(res.body.id as string);
      else assert.equal(res.status, 503, res.text);
      return res.status === 202;
    };
    for (let i = 0; i < 10; i++) assert.ok(await submitOne('before the outage'));
    await redis.stop();
    // Down for longer than the skill's registration lives (SKILL_TTL_MS, 2 s in tests): when Redis
    // returns, the skill's entry has expired until it announces itself again.
    await new Promise((r) => setTimeout(r, 2_500));
    let back = false;
    const restarted = redis.start().then(() => (back = true));
    while (!back) await submitOne('while it comes back');
    await restarted;
    // Right after: the first jobs the gateways accept again meet the skill's expired entry.
    let after = 0;
    const deadline = Date.now() + 20_000;
    while (after < 20 && Date.now() < deadline) if (await submitOne('after the outage')) after++;
    assert.equal(after, 20, 'the gateways accept jobs again');

    const views = await finished(accepted);
    const failed = views.filter((v) => v.body.status !== 'completed');
    assert.deepEqual(
      failed.map((v) => v.text),
      [],
      'every accepted job completed',
    );
  });

  it('keeps an accepted job waiting while its skill restarts, instead of failing it', async () => {
    const skill = cluster.processes.find((p) => p.spec.name === 'skill-nlp')!;
    await skill.stop(5_000);
    const accepted: string[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const res = await submit(`while the skill restarts ${i} ${randomUUID()}`);
        assert.equal(res.status, 202, res.text);
        accepted.push(res.body.id as string);
      }
      // Long enough for the dispatcher to pick every job up and find no replica.
      await new Promise((r) => setTimeout(r, 1_000));
      for (const v of await Promise.all(accepted.map(job))) assert.equal(v.body.status, 'running', v.text);
    } finally {
      skill.start();
    }
    for (const v of await finished(accepted)) assert.equal(v.body.status, 'completed', v.text);
  });
});

describe('when Redis loses its data', () => {
  it('skills announce themselves again as soon as it is back, not on their next heartbeat', async () => {
    // A Redis without persistence comes back empty: the registry is gone. Heartbeats are 30 s
    // apart here, so only announcing on reconnect can bring the skill back within the wait below.
    const redis = await OwnRedis.start({ persistent: false });
    const t = await testConfig({
      REDIS_URL: redis.url,
      SKILLS: 'nlp',
      GATEWAY_COUNT: '1',
      SKILL_HEARTBEAT_MS: '30000',
      SKILL_TTL_MS: '90000',
    });
    const cluster = await startTestCluster(t.config, t.env);
    try {
      const { auth } = await createKeys(t.config, { auth: { tenant: 'acme', tier: 'premium' } });
      await redis.stop();
      await redis.start();
      await eventually(
        async () => {
          const res = await http(`${cluster.endpoint}/v1/skills/nlp/infer`, {
            json: { input: `back ${randomUUID()}` },
            headers: auth,
          });
          assert.equal(res.status, 200, res.text);
          assert.equal(res.headers.get('x-degraded'), null, 'through the queue again, not the degraded path');
        },
        { timeoutMs: 10_000 },
      );
    } finally {
      await cluster.stop();
      await redis.destroy();
      await t.cleanup();
    }
  });
});
