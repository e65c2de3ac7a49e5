import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { errorCatalogue, isErrorCode } from '../../src/errors/index.js';
import { http, type HttpResult } from './cluster.js';

/** One public request of the walk. */
export interface WalkStep {
  name: string;
  run(): Promise<HttpResult>;
}

export interface WalkAnswer {
  name: string;
  res: HttpResult;
}

/**
 * Every public route of the API, each asked once as a client would (the fast path and Express,
 * text and tensors, sync and async, memory reads and writes, and a few wrong ones), through
 * `endpoint` with `auth`. `jobId` is an async job to look up.
 */
export function publicRoutes(
  endpoint: string,
  auth: Record<string, string>,
  opts: { jobId?: string; tensors?: boolean } = {},
): WalkStep[] {
  const json = (path: string, body: unknown, method = 'POST', headers: Record<string, string> = {}) =>
    http(`${endpoint}${path}`, { method, json: body, headers: { ...auth, ...headers } });
  const get = (path: string, method = 'GET') => http(`${endpoint}${path}`, { method, headers: auth });
  const unique = () => randomUUID();
  const steps: WalkStep[] = [
    { name: 'GET /healthz', run: () => http(`${endpoint}/healthz`) },
    { name: 'GET /readyz', run: () => http(`${endpoint}/readyz`) },
    { name: 'GET /metrics', run: () => http(`${endpoint}/metrics`) },
    { name: 'GET /v1/skills', run: () => get('/v1/skills') },
    { name: 'GET /v1/skills/nlp', run: () => get('/v1/skills/nlp') },
    { name: 'GET /v1/skills/nope', run: () => get('/v1/skills/nope') },
    {
      name: 'POST infer (fast path)',
      run: () => json('/v1/skills/nlp/infer', { input: `walk ${unique()}`, task: 'sentiment' }),
    },
    {
      name: 'POST infer (Express: +json type)',
      run: () =>
        http(`${endpoint}/v1/skills/nlp/infer`, {
          method: 'POST',
          body: JSON.stringify({ input: `walk ${unique()}` }),
          headers: { ...auth, 'content-type': 'application/vnd.api+json' },
        }),
    },
    {
      name: 'POST infer (cached, deterministic)',
      run: () => json('/v1/skills/nlp/infer', { input: 'The same walk every time.', task: 'sentiment' }),
    },
    { name: 'POST infer (unknown skill)', run: () => json('/v1/skills/nope/infer', { input: 'x' }) },
    { name: 'POST infer (unknown task)', run: () => json('/v1/skills/nlp/infer', { input: 'x', task: 'nope' }) },
    { name: 'POST /v1/jobs', run: () => json('/v1/jobs', { skill: 'nlp', input: `walk job ${unique()}` }) },
    {
      name: 'POST /v1/jobs (Idempotency-Key)',
      run: () => json('/v1/jobs', { skill: 'nlp', input: 'walk job, keyed' }, 'POST', { 'idempotency-key': 'walk-1' }),
    },
    { name: 'GET /v1/jobs/unknown', run: () => get('/v1/jobs/nlp.a-00000000-0000-0000-0000-000000000000') },
    {
      name: 'POST /v1/memory/triples',
      run: () => json('/v1/memory/triples', { subject: 'walk', verb: 'is', object: unique() }),
    },
    {
      name: 'POST /v1/memory/triples (Idempotency-Key)',
      run: () =>
        json('/v1/memory/triples', { subject: 'walk', verb: 'keyed', object: 'once' }, 'POST', {
          'idempotency-key': 'walk-memory-1',
        }),
    },
    { name: 'GET /v1/memory/triples', run: () => get('/v1/memory/triples?subject=walk&limit=2') },
    { name: 'DELETE /v1/memory/triples', run: () => get('/v1/memory/triples?subject=walk-nothing', 'DELETE') },
    { name: 'DELETE /v1/memory', run: () => get('/v1/memory?subject=walk-nothing', 'DELETE') },
    { name: 'POST /v1/memory/extract', run: () => json('/v1/memory/extract', { text: 'Maria lives in Madrid.' }) },
    { name: 'GET /nope', run: () => get('/nope') },
    { name: 'PUT /v1/skills', run: () => get('/v1/skills', 'PUT') },
    {
      name: 'POST infer (bad key)',
      run: () =>
        http(`${endpoint}/v1/skills/nlp/infer`, {
          json: { input: 'x' },
          headers: { authorization: `Bearer sks_${'Z'.repeat(43)}` },
        }),
    },
  ];
  if (opts.jobId) steps.push({ name: 'GET /v1/jobs/:id', run: () => get(`/v1/jobs/${opts.jobId}`) });
  if (opts.tensors) {
    steps.push({
      name: 'POST infer (tensors)',
      run: () =>
        json('/v1/skills/onnx/infer', {
          model: 'classifier',
          inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [Math.random(), -1, 2, 0.25] }],
        }),
    });
  }
  return steps;
}

/** Runs the walk one request after another (a request that hangs fails the helper's 30 s bound). */
export async function walk(steps: WalkStep[]): Promise<WalkAnswer[]> {
  const out: WalkAnswer[] = [];
  for (const step of steps) out.push({ name: step.name, res: await step.run() });
  return out;
}

/**
 * Never a 500; every 5xx is one of the catalogue's with the error shape, and every 503 says when
 * to come back (Retry-After).
 */
export function assertNoInternalError({ name, res }: WalkAnswer, when: string): void {
  const what = `${when}: ${name} → ${res.status} ${res.text.slice(0, 300)}`;
  assert.notEqual(res.status, 500, what);
  // The readiness probe answers 503 {"status": "not_ready"} by design (for balancers, not clients).
  if (name === 'GET /readyz') return;
  if (res.status >= 500) {
    const code = res.body?.error?.code;
    assert.ok(isErrorCode(code), what);
    assert.equal(errorCatalogue[code].status, res.status, what);
  }
  if (res.status === 503) assert.ok(res.headers.get('retry-after'), `${what}: no Retry-After`);
}

/** Things of the inside that no public answer may carry. */
export interface InternalFacts {
  /** Every port of the cluster's processes and dependencies, but the public one. */
  ports: number[];
}

const driverText =
  /ECONN|ETIMEDOUT|EPIPE|EHOSTUNREACH|Connection is closed|Stream isn't writeable|Command timed out|max retries per request|ioredis|ReplyError|LOADING Redis|Connection terminated|timeout exceeded when trying to connect|Query read timeout|SQLSTATE|syntax error|relation "|duplicate key|violates|\b[Rr]edis\b|[Pp]ostgres|\bpg_|grpc|\b1?\d UNAVAILABLE:|No connection established|bullmq/;
const stackText = /\n\s+at\s|\bat .+:\d+:\d+\)?|node_modules|\/src\/|\.ts:\d+|\.js:\d+|\/work\/|\/tmp\//;

/**
 * Asserts that an answer (headers and body) shows nothing of the inside: no internal address or
 * port, no instance id (host:role:port), no stack, no driver message; and that X-Served-By, when
 * present, is an opaque name.
 */
export function assertNothingInternal({ name, res }: WalkAnswer, facts: InternalFacts, when: string): void {
  const headers = [...res.headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n');
  const all = `${headers}\n${res.text}`;
  const where = `${when}: ${name} → ${res.status}\n${all.slice(0, 600)}`;
  assert.doesNotMatch(all, /\b127\.0\.0\.1\b|\blocalhost\b|\b0\.0\.0\.0\b|\[::1?\]/, `an internal address in ${where}`);
  const host = hostname();
  assert.doesNotMatch(
    all,
    new RegExp(`${host.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:(gateway|dispatcher|skill)`),
    `an instance id in ${where}`,
  );
  for (const port of facts.ports) assert.ok(!all.includes(`:${port}`), `internal port ${port} in ${where}`);
  assert.doesNotMatch(res.text, stackText, `a stack or a path in ${where}`);
  assert.doesNotMatch(res.text, driverText, `a driver's or dependency's message in ${where}`);
  assert.equal(res.headers.get('x-powered-by'), null, where);
  const servedBy = res.headers.get('x-served-by');
  if (servedBy !== null) assert.match(servedBy, /^gw-[0-9a-f]{10}$/, where);
}
