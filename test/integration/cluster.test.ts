import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { Config } from '../../src/config/index.js';
import { adminUrls, http, startTestCluster } from '../helpers/cluster.js';
import { eventually, REDIS_URL, testConfig } from '../helpers/env.js';

const sentence = 'My sister Maria lives in Madrid and loves her new job.';
/** Availability tests must reach the skill, not the response cache. */
const noStore = { 'cache-control': 'no-store' };

describe('the cluster end to end, through nginx', () => {
  let cluster: Awaited<ReturnType<typeof startTestCluster>>;
  let config: Config;
  let cleanup: () => Promise<void>;
  let base: string;
  let auth: Record<string, string>;
  const infer = (body: unknown, skill = 'nlp', headers: Record<string, string> = {}) =>
    http(`${base}/v1/skills/${skill}/infer`, { json: body, headers: { ...auth, ...headers } });

  before(async () => {
    // The nlp skill alone: the tests below stop it and expect /readyz to fail, which it does only
    // when no skill is left SERVING (test/integration/onnx-gateway.test.ts runs both skills).
    const t = await testConfig({ SKILLS: 'nlp', BODY_LIMIT_BYTES: '16384', MAX_INPUT_CHARS: '2000' });
    config = t.config;
    cleanup = t.cleanup;
    cluster = await startTestCluster(t.config, t.env);
    base = cluster.endpoint;
    auth = { authorization: `Bearer ${cluster.devKey.key}` };
  });

  after(async () => {
    await cluster?.stop();
    await cleanup?.();
  });

  it('lists the nlp skill as available', async () => {
    const res = await http(`${base}/v1/skills`, { headers: auth });
    assert.equal(res.status, 200);
    const nlp = res.body.skills.find((s: { name: string }) => s.name === 'nlp');
    assert.ok(nlp, res.text);
    assert.equal(nlp.status, 'available');
    assert.deepEqual(nlp.tasks, ['sentiment', 'entities', 'pos', 'tokens', 'triples', 'embed']);
    assert.match(nlp.model, /^wink-eng-lite-web-model@\d+\.\d+\.\d+$/);
    assert.equal(nlp.instances.length, 1, res.text);
    const [replica] = nlp.instances;
    // Models load lazily, on the first request: a fresh replica may not have loaded yet.
    assert.match(replica.state, /^(UNLOADED|LOADING|READY)$/);
    assert.equal(replica.model, nlp.model);
    assert.match(replica.version, /^\d+\.\d+\.\d+/);
    assert.deepEqual(replica.capacity, { max_concurrent: 64, max_batch: 32 });
    assert.ok(!('address' in replica), 'internal addresses stay internal');
  });

  it('answers sentiment from the real model, with timings', async () => {
    const pos = await infer({ input: sentence, task: 'sentiment' });
    assert.equal(pos.status, 200, pos.text);
    assert.equal(pos.body.output.label, 'positive');
    assert.ok(pos.body.output.score > 0);
    for (const k of ['queueMs', 'computeMs', 'skillMs', 'totalMs'])
      assert.equal(typeof pos.body.timings[k], 'number', k);

    const neg = await infer({ input: 'The service was terrible and I hate waiting.', task: 'sentiment' });
    assert.equal(neg.status, 200, neg.text);
    assert.equal(neg.body.output.label, 'negative');
    assert.ok(neg.body.output.score < 0);
  });

  it('answers entities, pos and tokens', async () => {
    const ent = await infer({ input: 'I paid $20 on 5 March 2024.', task: 'entities' });
    assert.equal(ent.status, 200, ent.text);
    assert.deepEqual(
      ent.body.output.entities.map((e: { type: string; text: string }) => [e.type, e.text]),
      [
        ['MONEY', '$20'],
        ['DATE', '5 March 2024'],
      ],
    );
    const pos = await infer({ input: 'Maria loves Madrid.', task: 'pos' });
    assert.deepEqual(
      pos.body.output.tokens.map((t: { pos: string }) => t.pos),
      ['PROPN', 'VERB', 'PROPN', 'PUNCT'],
    );
    const tok = await infer({ input: 'Hi, 42 times!', task: 'tokens' });
    assert.deepEqual(
      tok.body.output.tokens.map((t: { text: string }) => t.text),
      ['Hi', ',', '42', 'times', '!'],
    );
  });

  it('spreads requests over both gateways and names the one that answered', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const res = await http(`${base}/healthz`);
      seen.add(res.headers.get('x-served-by') ?? '');
    }
    assert.equal(seen.size, 2, [...seen].join(', '));
    // Opaque: a hash of the instance id, never a host or a port.
    for (const s of seen) assert.match(s, /^gw-[0-9a-f]{10}$/);
  });

  it('answers the same whether the fast path or Express reads the body', async () => {
    // application/json is read by the gateway's fast path; a +json type, a gzip body and a
    // non-UTF-8 charset go to Express's body parser. Same answers, same error codes.
    const body = JSON.stringify({ input: `Both paths agree ${Date.now()}`, task: 'tokens' });
    const post = (headers: Record<string, string>, payload: string | Buffer = body) =>
      http(`${base}/v1/skills/nlp/infer`, {
        method: 'POST',
        body: payload,
        headers: { ...auth, 'cache-control': 'no-store', ...headers },
      });
    const fast = await post({ 'content-type': 'application/json' });
    const vendor = await post({ 'content-type': 'application/vnd.example+json' });
    const gzipped = await post({ 'content-type': 'application/json', 'content-encoding': 'gzip' }, gzipSync(body));
    for (const res of [fast, vendor, gzipped]) {
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body.output, fast.body.output);
      assert.equal(res.headers.get('x-cache'), 'BYPASS', res.text);
      assert.ok(res.headers.get('ratelimit-remaining'), 'rate limit headers on both paths');
    }
    const latin1 = await post({ 'content-type': 'application/json; charset=latin1' });
    assert.equal(latin1.status, 415, latin1.text);
    assert.equal(latin1.body.error.code, 'UNSUPPORTED_MEDIA_TYPE', latin1.text);
  });

  it('keeps the client request id and echoes it in error bodies', async () => {
    const res = await infer({ input: 5 }, 'nlp', { 'x-request-id': 'client-abc-123' });
    assert.equal(res.headers.get('x-request-id'), 'client-abc-123');
    assert.equal(res.body.error.requestId, 'client-abc-123');
    const forged = await infer({ input: 'x' }, 'nlp', { 'x-request-id': 'bad id\twith spaces' });
    assert.notEqual(forged.headers.get('x-request-id'), 'bad id\twith spaces');
  });

  describe('bad input gets a 4xx with a stable code', () => {
    const cases: [string, () => Promise<Awaited<ReturnType<typeof http>>>, number, string][] = [
      [
        'malformed JSON',
        () =>
          http(`${base}/v1/skills/nlp/infer`, {
            method: 'POST',
            body: '{"input": "x',
            headers: { ...auth, 'content-type': 'application/json' },
          }),
        400,
        'INVALID_JSON',
      ],
      ['a JSON array', () => infer([1, 2]), 400, 'BAD_REQUEST'],
      ['a JSON string', () => infer('just text'), 400, 'BAD_REQUEST'],
      ['missing input', () => infer({ task: 'sentiment' }), 400, 'BAD_REQUEST'],
      ['input of the wrong type', () => infer({ input: { nested: true } }), 400, 'BAD_REQUEST'],
      ['empty input', () => infer({ input: '' }), 400, 'BAD_REQUEST'],
      ['an unknown field', () => infer({ input: 'x', tmperature: 0 }), 400, 'BAD_REQUEST'],
      ['temperature out of range', () => infer({ input: 'x', temperature: 9 }), 400, 'BAD_REQUEST'],
      ['an unknown skill', () => infer({ input: 'x' }, 'nope'), 404, 'SKILL_NOT_FOUND'],
      [
        'an injection string as skill',
        () => infer({ input: 'x' }, encodeURIComponent("nlp'; DROP TABLE x;--")),
        404,
        'SKILL_NOT_FOUND',
      ],
      ['an unknown task', () => infer({ input: 'x', task: 'summarise' }), 400, 'UNKNOWN_TASK'],
      ['input over the configured size', () => infer({ input: 'a'.repeat(2001) }), 413, 'INPUT_TOO_LARGE'],
      ['a body over the gateway limit', () => infer({ input: 'a'.repeat(20_000) }), 413, 'PAYLOAD_TOO_LARGE'],
      ['a body over the nginx limit', () => infer({ input: 'a'.repeat(2 * 1024 * 1024) }), 413, 'PAYLOAD_TOO_LARGE'],
      [
        'a non-JSON content type',
        () =>
          http(`${base}/v1/skills/nlp/infer`, {
            method: 'POST',
            body: 'input=x',
            headers: { ...auth, 'content-type': 'text/plain' },
          }),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      ],
      ['an unknown route', () => http(`${base}/v2/nothing`), 404, 'NOT_FOUND'],
      ['no API key', () => http(`${base}/v1/skills/nlp/infer`, { json: { input: 'x' } }), 401, 'UNAUTHORIZED'],
      [
        'a malformed API key',
        () => infer({ input: 'x' }, 'nlp', { authorization: 'Bearer nope' }),
        401,
        'UNAUTHORIZED',
      ],
      [
        'an unknown API key',
        () => infer({ input: 'x' }, 'nlp', { authorization: `Bearer sks_${'A'.repeat(43)}` }),
        401,
        'UNAUTHORIZED',
      ],
    ];
    for (const [name, send, status, code] of cases) {
      it(name, async () => {
        const res = await send();
        assert.equal(res.status, status, res.text);
        assert.equal(res.body?.error?.code, code, res.text);
        assert.equal(typeof res.body.error.message, 'string');
        assert.ok(!/at .+\.(ts|js):\d+/.test(res.text), 'no stack trace in the body');
      });
    }

    it('treats hostile strings as plain text', async () => {
      for (const input of [
        "'; DROP TABLE triples; --",
        '<script>alert(1)</script>',
        '{{7*7}} ${7*7}',
        '\u0000\u202e emoji 🤖 مرحبا',
      ]) {
        const res = await infer({ input, task: 'tokens' });
        assert.equal(res.status, 200, res.text);
        assert.ok(Array.isArray(res.body.output.tokens));
      }
    });
  });

  it('reports readiness publicly in one word, and the details and metrics on each admin port', async () => {
    const ready = await http(`${base}/readyz`);
    assert.equal(ready.status, 200, ready.text);
    assert.deepEqual(ready.body, { status: 'ready' });
    assert.deepEqual((await http(`${base}/healthz`)).body, { status: 'ok' });
    assert.equal((await http(`${base}/metrics`)).status, 404, 'no metrics through the public port');
    const [admin] = await adminUrls(cluster, 'gateway');
    const detail = await http(`${admin}/readyz`);
    assert.equal(detail.status, 200, detail.text);
    assert.deepEqual(detail.body.checks, { redis: 'ok', postgres: 'ok', skills: 'ok' });
    for (const url of [...(await adminUrls(cluster, 'dispatcher')), ...(await adminUrls(cluster, 'skill'))]) {
      const r = await http(`${url}/readyz`);
      assert.equal(r.status, 200, `${url}: ${r.text}`);
      assert.match((await http(`${url}/metrics`)).text, /process_cpu_user_seconds_total/);
    }
    const metrics = await http(`${admin}/metrics`);
    assert.match(
      metrics.text,
      /skillserve_http_request_duration_seconds_bucket\{.*route="\/v1\/skills\/:skill\/infer"/,
    );
    assert.match(metrics.text, /skillserve_http_requests_in_flight/);
    assert.match(metrics.text, /process_cpu_user_seconds_total/);
  });

  it('answers 503 SKILL_UNAVAILABLE at once when the skill is stopped, and recovers when it is back', async () => {
    const skill = cluster.processes.find((p) => p.spec.name === 'skill-nlp')!;
    await skill.stop(5_000);
    const down = await infer({ input: sentence }, 'nlp', noStore);
    assert.equal(down.status, 503, down.text);
    assert.equal(down.body.error.code, 'SKILL_UNAVAILABLE');
    assert.ok(down.headers.get('retry-after'));
    const [admin] = await adminUrls(cluster, 'gateway');
    const notReady = await eventually(async () => {
      const r = await http(`${admin}/readyz`);
      assert.equal(r.status, 503);
      return r;
    });
    assert.ok(notReady.body.failing.includes('skills'), notReady.text);
    assert.deepEqual((await http(`${base}/readyz`)).body, { status: 'not_ready' });
    // Each gateway trusts its copy of the registry for REGISTRY_CACHE_MS.
    await eventually(async () => {
      const listed = await http(`${base}/v1/skills/nlp`, { headers: auth });
      assert.equal(listed.body.status, 'unavailable');
    });

    skill.start();
    await eventually(async () => {
      const r = await infer({ input: sentence }, 'nlp', noStore);
      assert.equal(r.status, 200, r.text);
    });
  });

  it('restarts a skill that crashes; meanwhile requests get 503, never 500 or a hang', async () => {
    const skill = cluster.processes.find((p) => p.spec.name === 'skill-nlp')!;
    const before = skill.restarts;
    process.kill(skill.pid!, 'SIGKILL');
    const statuses: number[] = [];
    await eventually(
      async () => {
        const r = await infer({ input: sentence }, 'nlp', noStore);
        statuses.push(r.status);
        if (r.status !== 200) assert.equal(r.body.error.code, 'SKILL_UNAVAILABLE', r.text);
        assert.equal(r.status, 200);
      },
      { timeoutMs: 30_000 },
    );
    assert.ok(
      statuses.every((s) => s === 200 || s === 503),
      statuses.join(','),
    );
    assert.equal(skill.restarts, before + 1);
    assert.ok(cluster.events.some((e) => e.includes('skill-nlp: exited')));
  });

  it('isolates its Redis keys under its own prefix', async () => {
    const redis = new Redis(REDIS_URL);
    try {
      const [, keys] = await redis.scan('0', 'MATCH', `${config.KEY_PREFIX}:*`, 'COUNT', 1000);
      assert.ok(keys.length > 0);
    } finally {
      redis.disconnect();
    }
  });
});
