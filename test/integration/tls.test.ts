import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { startTestCluster } from '../helpers/cluster.js';
import { eventually, freePorts, testConfig } from '../helpers/env.js';
import { type FakeOpenAi, startFakeOpenAi } from '../helpers/fake-openai.js';

interface H2Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request over an HTTP/2 session. */
function h2(
  session: ClientHttp2Session,
  path: string,
  init: { body?: unknown; headers?: Record<string, string> } = {},
) {
  return new Promise<H2Answer>((resolve, reject) => {
    const req = session.request({
      ':method': init.body === undefined ? 'GET' : 'POST',
      ':path': path,
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...init.headers,
    });
    let body = '';
    let headers: H2Answer['headers'] = {};
    req.setEncoding('utf8');
    req.on('response', (h) => (headers = h as H2Answer['headers']));
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => resolve({ status: Number(headers[':status']), headers, body }));
    req.on('error', reject);
    if (init.body !== undefined) req.write(JSON.stringify(init.body));
    req.end();
  });
}

/** A streamed request over an HTTP/2 session: the body as it arrived, one string per DATA read. */
function h2Stream(session: ClientHttp2Session, path: string, body: unknown, headers: Record<string, string>) {
  return new Promise<{ status: number; reads: string[] }>((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json', ...headers });
    const reads: string[] = [];
    let status = 0;
    req.setEncoding('utf8');
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (chunk: string) => reads.push(chunk));
    req.on('end', () => resolve({ status, reads }));
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** A bare TLS handshake; resolves with the protocol agreed, or the error. */
function handshake(
  port: number,
  opts: ConnectionOptions,
): Promise<{ protocol?: string | null; alpn?: string | false | null; error?: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ...opts }, () => {
      resolve({ protocol: socket.getProtocol(), alpn: socket.alpnProtocol });
      socket.end();
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve({ error }));
  });
}

describe('TLS at the front door (TLS=on, self-signed under `up`)', () => {
  let cluster: Awaited<ReturnType<typeof startTestCluster>>;
  let cleanup: () => Promise<void>;
  let tlsPort: number;
  let ca: Buffer;
  let session: ClientHttp2Session;
  let auth: Record<string, string>;
  let runDir: string;
  let fake: FakeOpenAi;

  before(async () => {
    [tlsPort] = (await freePorts(1)) as [number];
    fake = await startFakeOpenAi(['tiny-llm']);
    const t = await testConfig({
      SKILLS: 'nlp,openai',
      OPENAI_BASE_URL: fake.url,
      OPENAI_MODEL: 'tiny-llm',
      TLS: 'on',
      TLS_PORT: String(tlsPort),
    });
    cleanup = t.cleanup;
    runDir = t.config.RUN_DIR;
    cluster = await startTestCluster(t.config, t.env);
    ca = readFileSync(cluster.tls!.certFile);
    session = h2connect(`https://localhost:${tlsPort}`, { ca, host: '127.0.0.1' });
    auth = { authorization: `Bearer ${cluster.devKey.key}` };
  });

  after(async () => {
    session?.close();
    await cluster?.stop();
    await cleanup?.();
    await fake?.close();
  });

  it('makes a self-signed certificate for localhost and 127.0.0.1 under the run directory', () => {
    assert.equal(cluster.tls!.endpoint, `https://127.0.0.1:${tlsPort}`);
    assert.equal(cluster.tls!.selfSigned, true);
    const cert = new X509Certificate(ca);
    assert.match(cert.subjectAltName!, /DNS:localhost/);
    assert.match(cert.subjectAltName!, /IP Address:127\.0\.0\.1/);
    assert.equal(cluster.tls!.certFile, join(resolve(runDir), 'tls', 'cert.pem'));
  });

  it('answers an inference over HTTP/2, then the same from the cache, with HSTS', async () => {
    const body = { input: 'My sister Maria lives in Madrid and loves her new job.', task: 'sentiment' };
    const first = await h2(session, '/v1/skills/nlp/infer', { body, headers: auth });
    assert.equal(first.status, 200, first.body);
    assert.equal(JSON.parse(first.body).output.label, 'positive');
    assert.equal(first.headers['x-cache'], 'MISS');
    assert.match(String(first.headers['strict-transport-security']), /^max-age=\d{7,}/);
    const second = await h2(session, '/v1/skills/nlp/infer', { body, headers: auth });
    assert.equal(second.status, 200, second.body);
    assert.equal(second.headers['x-cache'], 'HIT');
    assert.deepEqual(JSON.parse(second.body).output, JSON.parse(first.body).output);
  });

  it('streams a chat completion over HTTP/2 as server-sent events, chunk by chunk, to [DONE]', async () => {
    await eventually(async () => {
      const models = JSON.parse((await h2(session, '/v1/models', { headers: auth })).body);
      assert.ok(models.data.some((m: { id: string }) => m.id === 'tiny-llm'));
    });
    fake.script({ kind: 'ok', tokenDelayMs: 30 });
    const body = { model: 'tiny-llm', messages: [{ role: 'user', content: 'one two three' }], stream: true };
    const { status, reads } = await h2Stream(session, '/v1/chat/completions', body, auth);
    assert.equal(status, 200, reads.join(''));
    const events = reads
      .join('')
      .split('\n\n')
      .filter((e) => e.startsWith('data: '))
      .map((e) => e.slice('data: '.length));
    assert.equal(events.at(-1), '[DONE]');
    const deltas = events.slice(0, -1).map((e) => JSON.parse(e).choices[0]?.delta?.content ?? '');
    assert.equal(deltas.join(''), 'echo: one two three');
    // nginx passes the stream on as it comes (no proxy buffering on the TLS server either): the
    // tokens, 30 ms apart upstream, reach the client in several reads, not in one at the end.
    assert.ok(reads.length > 2, `the stream arrived in ${reads.length} read(s)`);
  });

  it('keeps error answers and the public /metrics rule the same over HTTPS', async () => {
    const noKey = await h2(session, '/v1/skills');
    assert.equal(noKey.status, 401);
    assert.equal(JSON.parse(noKey.body).error.code, 'UNAUTHORIZED');
    assert.equal((await h2(session, '/metrics')).status, 404);
  });

  it('negotiates h2 by ALPN and speaks TLS 1.2 and 1.3, nothing older', async () => {
    const h2Alpn = await handshake(tlsPort, { ca, ALPNProtocols: ['h2', 'http/1.1'] });
    assert.equal(h2Alpn.alpn, 'h2');
    assert.equal((await handshake(tlsPort, { ca, maxVersion: 'TLSv1.3', minVersion: 'TLSv1.3' })).protocol, 'TLSv1.3');
    assert.equal((await handshake(tlsPort, { ca, maxVersion: 'TLSv1.2', minVersion: 'TLSv1.2' })).protocol, 'TLSv1.2');
    // A client that offers only TLS 1.0/1.1 (allowed on its side by security level 0) is refused by nginx.
    const old = await handshake(tlsPort, {
      ca,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    assert.ok(old.error, `TLS ${String(old.protocol)} was accepted`);
    // Alert 70 (protocol_version) comes from nginx: the client did offer the old version.
    assert.equal(old.error.code, 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', old.error.message);
  });

  it('is verified for real: a client that does not trust the certificate is refused', async () => {
    const untrusted = await handshake(tlsPort, {});
    assert.equal(untrusted.error?.code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
  });

  it('keeps plain HTTP on 127.0.0.1 only', async () => {
    const conf = readFileSync(
      join(cluster.processes.find((p) => p.spec.name === 'nginx')!.spec.args[1]!, 'nginx.conf'),
      'utf8',
    );
    assert.match(conf, new RegExp(`listen 127\\.0\\.0\\.1:${new URL(cluster.endpoint).port};`));
    const res = await fetch(`${cluster.endpoint}/v1/skills`, { headers: auth });
    assert.equal(res.status, 200);
  });
});
