import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createGateway } from '../../src/gateway/app.js';
import { openGateway } from '../../src/gateway/wiring.js';
import { adminUrls, http, type HttpResult, startTestCluster } from '../helpers/cluster.js';
import { eventually, testConfig } from '../helpers/env.js';
import { createKeys } from '../helpers/keys.js';
import { type PostgresInstance, startPostgresInstance } from '../helpers/postgres-instance.js';
import { OwnRedis } from '../helpers/redis-server.js';
import {
  assertNoInternalError,
  assertNothingInternal,
  type InternalFacts,
  publicRoutes,
  walk,
} from '../helpers/route-walk.js';

/** Sends raw bytes as an HTTP/1.1 request and reads the status line and body of the answer. */
function rawRequest(port: number, head: string, body: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
    socket.on('error', reject);
    socket.on('end', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1]);
      resolve({ status, body: data.slice(data.indexOf('\r\n\r\n') + 4) });
    });
    socket.write(`${head}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
    socket.write(body);
  });
}

/**
 * What an outsider sees on the public port: strict input, bounded slow clients, and nothing of
 * the inside in any answer, in every state of the cluster. Redis and Postgres are the test's own
 * instances (never the machine's), so they can be stopped.
 */
describe('the public port', () => {
  let redis: OwnRedis;
  let pgi: PostgresInstance;
  let cluster: Awaited<ReturnType<typeof startTestCluster>>;
  let cleanup: () => Promise<void>;
  let auth: Record<string, string>;
  let publicPort: number;
  let facts: InternalFacts;
  const infer = (body: unknown, skill = 'nlp') =>
    http(`${cluster.endpoint}/v1/skills/${skill}/infer`, { json: body, headers: auth });

  before(async () => {
    [redis, pgi] = await Promise.all([OwnRedis.start(), startPostgresInstance()]);
    const t = await testConfig({
      REDIS_URL: redis.url,
      DATABASE_URL: pgi.url,
      GATEWAY_COUNT: '1',
      NGINX_CONN_PER_IP: '20',
      RATE_LIMITS: 'free=100000,standard=100000,premium=100000',
    });
    cleanup = t.cleanup;
    publicPort = t.config.PUBLIC_PORT;
    cluster = await startTestCluster(t.config, t.env);
    auth = (await createKeys(t.config, { auth: { tenant: 'acme', tier: 'premium' } })).auth!;
    const admins = (
      await Promise.all(['gateway', 'dispatcher', 'skill-'].map((role) => adminUrls(cluster, role)))
    ).flat();
    facts = {
      ports: [
        redis.port,
        pgi.port,
        t.config.GATEWAY_BASE_PORT,
        ...admins.map((u) => Number(new URL(u).port)),
        // Every port a skill process listens on (its gRPC port is in its instance id).
        ...cluster.processes.filter((p) => p.spec.name.startsWith('skill-')).map((p) => p.adminPort ?? 0),
      ],
    };
    // The skills' gRPC ports, from the internal registry view (the admin /healthz instance names).
    for (const url of await adminUrls(cluster, 'skill-')) {
      const health = await http(`${url}/healthz`);
      const port = Number(/:(\d+)$/.exec(String(health.body?.instance))?.[1]);
      if (port) facts.ports.push(port);
    }
  });

  after(async () => {
    redis?.resume();
    await cluster?.stop();
    await Promise.all([redis?.destroy(), pgi?.destroy()]);
    await cleanup?.();
  });

  describe('strict input', () => {
    const bad = Buffer.concat([Buffer.from('{"input":"caf'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);

    it('refuses a JSON body that is not UTF-8, on the fast path and through Express: 400 INVALID_JSON', async () => {
      for (const type of ['application/json', 'application/json; charset=utf-8', 'application/vnd.api+json']) {
        const res = await rawRequest(
          publicPort,
          `POST /v1/skills/nlp/infer HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth.authorization}\r\nContent-Type: ${type}`,
          bad,
        );
        assert.equal(res.status, 400, `${type}: ${res.body}`);
        assert.equal(JSON.parse(res.body).error.code, 'INVALID_JSON', type);
      }
      for (const path of ['/v1/jobs', '/v1/memory/triples']) {
        const res = await rawRequest(
          publicPort,
          `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth.authorization}\r\nContent-Type: application/json`,
          bad,
        );
        assert.equal(res.status, 400, `${path}: ${res.body}`);
        assert.equal(JSON.parse(res.body).error.code, 'INVALID_JSON', path);
      }
    });

    it('refuses tensor values that overflow (1e999), naming the field', async () => {
      const body = Buffer.from(
        '{"model":"classifier","inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":[0.5,1e999,2,-1e999]}]}',
      );
      const res = await rawRequest(
        publicPort,
        `POST /v1/skills/onnx/infer HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth.authorization}\r\nContent-Type: application/json`,
        body,
      );
      assert.equal(res.status, 400, res.body);
      const { error } = JSON.parse(res.body);
      assert.equal(error.code, 'BAD_REQUEST');
      assert.equal(error.details.field, 'inputs.0.data');
      assert.match(error.message, /data\[1\] is Infinity/);
    });

    it('gives NFC and NFD forms of a text one answer, computed from the NFC text', async () => {
      const nfc = `Jos\u00e9 visited S\u00e3o Paulo and Z\u00fcrich ${randomUUID().slice(0, 8)}`;
      const nfd = nfc.normalize('NFD');
      const first = await infer({ input: nfd, task: 'tokens' });
      const second = await infer({ input: nfc, task: 'tokens' });
      assert.equal(first.status, 200, first.text);
      assert.equal(second.status, 200, second.text);
      assert.equal(first.headers.get('x-cache'), 'MISS');
      assert.equal(second.headers.get('x-cache'), 'HIT', 'one cache entry for both forms');
      assert.deepEqual(second.body.output, first.body.output);
      const words = (first.body.output.tokens as { text: string }[]).map((t) => t.text).join(' ');
      assert.ok(words.includes('Jos\u00e9') && words.includes('S\u00e3o'), `the model saw NFC text: ${words}`);
      assert.equal(words.normalize('NFC'), words);
    });
  });

  describe('slow clients', () => {
    /** A connection from `from` that sends its headers and then drips the body one byte at a time. */
    function drip(from: string, everyMs: number): { socket: Socket; answer: Promise<string> } {
      const socket = connect({ port: publicPort, host: '127.0.0.1', localAddress: from });
      let data = '';
      // The status line, as soon as it comes (nginx may keep reading and discarding the body
      // after it answers), or whatever came when the connection closed.
      const answer = new Promise<string>((resolve) => {
        socket.on('data', (d: Buffer) => {
          data += d.toString('latin1');
          if (data.includes('\r\n')) resolve(data);
        });
        socket.on('close', () => resolve(data));
        socket.on('error', () => undefined);
      });
      socket.on('connect', () => {
        socket.write(
          `POST /v1/memory/triples HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth.authorization}\r\n` +
            'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{',
        );
        const timer = setInterval(() => socket.writable && socket.write(' '), everyMs);
        socket.on('close', () => clearInterval(timer));
      });
      return { socket, answer };
    }

    it('caps the connections one address holds (429) without starving anyone else', async () => {
      // 200 clients from 127.0.0.2 that never finish their bodies; the limit is 20 per address.
      const slow = Array.from({ length: 200 }, () => drip('127.0.0.2', 1_000));
      try {
        const refused = await eventually(
          async () => {
            const answers = await Promise.race([
              Promise.all(slow.slice(20).map((s) => s.answer)),
              new Promise<undefined>((r) => setTimeout(() => r(undefined), 200)),
            ]);
            assert.ok(answers, 'the connections over the limit are answered');
            return answers;
          },
          { timeoutMs: 20_000 },
        );
        assert.ok(
          refused.filter((a) => /^HTTP\/1\.1 429/.test(a)).length >= 170,
          'one address gets its 20 connections, the rest 429',
        );
        // Meanwhile another client (another address) is served as usual.
        for (let i = 0; i < 5; i++) {
          const res = await infer({ input: `served while others drip ${i}` });
          assert.equal(res.status, 200, res.text);
        }
      } finally {
        for (const s of slow) s.socket.destroy();
      }
    });

    it('cuts a client whose body stops coming (408 or a reset), without a gateway ever seeing it', async () => {
      // One byte, then nothing: nginx's client_body_timeout ends it.
      const stuck = drip('127.0.0.3', 600_000);
      const answer = await stuck.answer;
      assert.doesNotMatch(answer, /^HTTP\/1\.1 (2|5)\d\d/, answer);
    });
  });

  describe('answers nothing internal', () => {
    const walkAndCheck = async (when: string, opts: { jobId?: string } = {}) => {
      const answers = await walk(publicRoutes(cluster.endpoint, auth, { ...opts, tensors: true }));
      for (const answer of answers) {
        assertNoInternalError(answer, when);
        assertNothingInternal(answer, facts, when);
      }
      return answers;
    };

    it('when all is well: an opaque X-Served-By, no instance ids, no addresses', async () => {
      const job = await http(`${cluster.endpoint}/v1/jobs`, { json: { skill: 'nlp', input: 'walk' }, headers: auth });
      assert.equal(job.status, 202, job.text);
      const answers = await walkAndCheck('all well', { jobId: job.body.id });
      const skills = answers.find((a) => a.name === 'GET /v1/skills')!.res;
      assert.equal(skills.status, 200);
      for (const s of skills.body.skills as { instances: { instance: string }[] }[])
        for (const i of s.instances) assert.match(i.instance, /^skill-[0-9a-f]{10}$/);
      const served = answers.map((a) => a.res.headers.get('x-served-by')).filter(Boolean);
      assert.ok(served.length > 0, 'X-Served-By is on by default');
    });

    it('when Redis is down', async () => {
      await redis.stop();
      try {
        await walkAndCheck('Redis down');
      } finally {
        await redis.start();
      }
      await eventually(async () => assert.equal((await http(`${cluster.endpoint}/readyz`)).body.status, 'ready'));
    });

    it('when Redis hangs', async () => {
      redis.pause();
      try {
        await walkAndCheck('Redis hung');
      } finally {
        redis.resume();
      }
      await eventually(async () => assert.equal((await http(`${cluster.endpoint}/readyz`)).body.status, 'ready'));
    });

    it('when Postgres is down', async () => {
      await pgi.stop('immediate');
      try {
        const answers = await walkAndCheck('Postgres down');
        const write = answers.find((a) => a.name === 'POST /v1/memory/triples')!.res;
        assert.equal(write.status, 503, write.text);
      } finally {
        await pgi.start();
      }
    });

    it('when a skill is down', async () => {
      const skill = cluster.processes.find((p) => p.spec.name === 'skill-nlp')!;
      await skill.stop(5_000);
      try {
        await walkAndCheck('skill down');
      } finally {
        skill.start();
      }
      await eventually(async () => assert.equal((await infer({ input: `back ${randomUUID()}` })).status, 200));
    });
  });
});

describe('X-Served-By', () => {
  it('is not sent with SERVED_BY_HEADER=false', async () => {
    const t = await testConfig({ SERVED_BY_HEADER: 'false' });
    const gateway = await openGateway(t.config, {
      instance: 'test',
      logger: pino({ level: 'silent' }),
      metrics: new Registry(),
    });
    try {
      const { handler } = createGateway(gateway.deps);
      const { createServer } = await import('node:http');
      const server = createServer(handler).listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      const port = (server.address() as { port: number }).port;
      const res: HttpResult = await http(`http://127.0.0.1:${port}/healthz`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-served-by'), null);
      await new Promise((r) => server.close(r));
    } finally {
      for (const step of gateway.closing) await Promise.resolve(step.run()).catch(() => undefined);
      await t.cleanup();
    }
  });
});
