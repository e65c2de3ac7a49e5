import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { loadConfig } from '../../src/config/index.js';
import type { AppError } from '../../src/errors/index.js';
import type { BackendItem, BackendResult } from '../../src/skills/backend.js';
import { createOpenAiBackend, type OpenAiBackend } from '../../src/skills/backends/openai/index.js';
import { SkillClient } from '../../src/skills/client.js';
import { fromItemError } from '../../src/skills/grpc-errors.js';
import { createSkillServer } from '../../src/skills/server.js';
import { type FakeOpenAi, startFakeOpenAi } from '../helpers/fake-openai.js';
import { eventually, freePorts } from '../helpers/env.js';

const item = (over: Partial<BackendItem> = {}): BackendItem => ({
  id: 'i',
  text: 'Say hi',
  task: 'chat',
  maxTokens: 0,
  modelVersion: '',
  ...over,
});

function output(r: BackendResult | undefined): any {
  assert.ok(r?.ok, JSON.stringify(r));
  assert.ok('json' in r.output);
  return r.output.json;
}

function error(r: BackendResult | undefined) {
  assert.ok(r && !r.ok, JSON.stringify(r));
  return r.error;
}

describe('openai backend against an OpenAI-compatible server', () => {
  let fake: FakeOpenAi;
  let backend: OpenAiBackend;
  const backendFor = (env: Record<string, string> = {}) =>
    createOpenAiBackend(loadConfig({ OPENAI_BASE_URL: fake.url, OPENAI_MODEL: 'tiny-llm', ...env }));

  before(async () => {
    fake = await startFakeOpenAi(['tiny-llm', 'other-llm']);
    backend = backendFor({ OPENAI_TIMEOUT_MS: '5000' });
    await backend.load();
  });

  after(async () => {
    await backend?.unload();
    await fake?.close();
  });

  beforeEach(() => fake.reset());

  it('describes itself: chat and completion, not deterministic, model@owner', () => {
    const d = backend.describe();
    assert.deepEqual(
      { ...d, tasks: [...d.tasks] },
      {
        backend: 'openai',
        model: 'tiny-llm@fake',
        tasks: ['chat', 'completion'],
        defaultTask: 'chat',
        deterministic: false,
      },
    );
    assert.equal(backend.state(), 'READY');
  });

  it('chat: the text becomes one user message; max_tokens and temperature pass through', async () => {
    const [r] = await backend.inferBatch([item({ text: 'Hello there', maxTokens: 17, temperature: 0 })]);
    const out = output(r);
    assert.equal(out.text, 'echo: Hello there');
    assert.equal(out.finish_reason, 'stop');
    assert.deepEqual(out.usage, { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 });
    const [sent] = fake.generations();
    assert.equal(sent!.path, '/v1/chat/completions');
    assert.deepEqual(sent!.body, {
      model: 'tiny-llm',
      messages: [{ role: 'user', content: 'Hello there' }],
      stream: false,
      max_tokens: 17,
      temperature: 0,
    });
  });

  it('chat: unset max_tokens and temperature are left to the upstream', async () => {
    await backend.inferBatch([item()]);
    const body = fake.generations()[0]!.body;
    assert.ok(!('max_tokens' in body) && !('temperature' in body), JSON.stringify(body));
  });

  it('chat: a JSON messages array is the whole conversation; a malformed one is BAD_REQUEST', async () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Capital of France?' },
    ];
    const [ok, bad, text] = await backend.inferBatch([
      item({ text: JSON.stringify(messages) }),
      item({ text: JSON.stringify([{ role: 'wizard', content: 'x' }]) }),
      item({ text: '[1] is a footnote, not a conversation' }),
    ]);
    assert.equal(output(ok).text, 'echo: Capital of France?');
    assert.equal(error(bad).code, 'BAD_REQUEST');
    assert.match(error(bad).message, /messages\[0\]\.role/);
    assert.equal(output(text).text, 'echo: [1] is a footnote, not a conversation');
    assert.deepEqual(fake.generations()[0]!.body.messages, messages);
    assert.equal(fake.generations().length, 2, 'the malformed conversation never went upstream');
  });

  it('completion: the text is the prompt of POST /v1/completions', async () => {
    const [r] = await backend.inferBatch([
      item({ task: 'completion', text: 'Once upon', maxTokens: 5, temperature: 0.7 }),
    ]);
    assert.equal(output(r).text, 'echo: Once upon');
    const sent = fake.generations()[0]!;
    assert.equal(sent.path, '/v1/completions');
    assert.equal(sent.body.prompt, 'Once upon');
    assert.equal(sent.body.max_tokens, 5);
    assert.ok(Math.abs(sent.body.temperature - 0.7) < 1e-6);
  });

  it('a batch keeps item order and fails only the bad items', async () => {
    fake.script({ kind: 'ok', text: 'first' }, { kind: 'status', status: 400, body: { error: { message: 'bad' } } });
    const rs = await backend.inferBatch([
      item({ id: 'a' }),
      item({ id: 'b', task: 'translate' }),
      item({ id: 'c', text: '' }),
      item({ id: 'd' }),
    ]);
    assert.equal(rs.length, 4);
    assert.ok(rs[0]!.ok || rs[3]!.ok);
    assert.equal(error(rs[1]).code, 'UNKNOWN_TASK');
    assert.equal(error(rs[2]).code, 'BAD_REQUEST');
    // Items a and d run concurrently: whichever reached the upstream first got the normal answer.
    const upstreamCodes = [rs[0]!, rs[3]!].map((r) => (r.ok ? 'ok' : r.error.code)).sort();
    assert.deepEqual(upstreamCodes, ['BAD_REQUEST', 'ok']);
    assert.equal(fake.generations().length, 2, 'the bad items never went upstream');
  });

  it('maps upstream statuses to stable codes without leaking upstream internals', async () => {
    const cases: [number, unknown, string, RegExp][] = [
      [
        400,
        { error: { message: 'max_tokens must be at most 2048' } },
        'BAD_REQUEST',
        /max_tokens must be at most 2048/,
      ],
      [422, { object: 'error', message: 'prompt too long' }, 'BAD_REQUEST', /prompt too long/],
      [401, { error: { message: 'secret internal detail' } }, 'SKILL_ERROR', /OPENAI_API_KEY/],
      [403, {}, 'SKILL_ERROR', /credentials/],
      [
        404,
        { error: 'model "tiny-llm" not found, try pulling it first' },
        'SKILL_ERROR',
        /does not serve model "tiny-llm"/,
      ],
      [500, { error: { message: 'CUDA out of memory at 0xdeadbeef' } }, 'SKILL_ERROR', /upstream failed \(500\)/],
      [502, {}, 'SKILL_UNAVAILABLE', /not available \(502\)/],
      [503, {}, 'SKILL_UNAVAILABLE', /not available \(503\)/],
    ];
    for (const [status, body, code, message] of cases) {
      fake.script({ kind: 'status', status, body });
      const e = error((await backend.inferBatch([item()]))[0]);
      assert.equal(e.code, code, `${status}`);
      assert.match(e.message, message, `${status}`);
      assert.ok(!/secret|0xdeadbeef/.test(e.message), e.message);
    }
  });

  it('malformed JSON from the upstream is SKILL_ERROR', async () => {
    fake.script({ kind: 'malformed' });
    const e = error((await backend.inferBatch([item()]))[0]);
    assert.equal(e.code, 'SKILL_ERROR');
    assert.match(e.message, /malformed JSON/);
  });

  it('a slow upstream is SKILL_TIMEOUT at OPENAI_TIMEOUT_MS, and the request is abandoned', async () => {
    const quick = backendFor({ OPENAI_TIMEOUT_MS: '300' });
    await quick.load();
    fake.script({ kind: 'ok', delayMs: 5_000 });
    const e = error((await quick.inferBatch([item()]))[0]);
    assert.equal(e.code, 'SKILL_TIMEOUT');
    await eventually(async () => assert.equal(fake.generations()[0]?.aborted, true, 'the upstream saw the abort'), {
      intervalMs: 20,
      timeoutMs: 5_000,
    });
  });

  it("the caller's deadline, when sooner, bounds the upstream request", async () => {
    fake.script({ kind: 'ok', delayMs: 5_000 });
    const e = error((await backend.inferBatch([item()], { deadline: Date.now() + 400 }))[0]);
    assert.equal(e.code, 'SKILL_TIMEOUT');
  });

  it('429 with Retry-After: waits as asked, retries, and succeeds', async () => {
    const before = backend.upstreamStats();
    fake.script({ kind: 'status', status: 429, headers: { 'retry-after': '1' }, body: { error: { message: 'busy' } } });
    const [r] = await backend.inferBatch([item({ text: 'patience' })]);
    assert.equal(output(r).text, 'echo: patience');
    const [first, second] = fake.generations();
    assert.equal(fake.generations().length, 2);
    // Timers may fire a hair early; the wait is the upstream's 1 s, not an immediate retry.
    assert.ok(second!.at - first!.at >= 950, `retried after ${second!.at - first!.at} ms`);
    const after = backend.upstreamStats();
    assert.equal(after.retries - before.retries, 1);
    assert.equal((after.byStatus['429'] ?? 0) - (before.byStatus['429'] ?? 0), 1);
  });

  it('429 whose Retry-After does not fit the budget is OVERLOADED at once, with retryAfterS', async () => {
    const short = backendFor({ OPENAI_TIMEOUT_MS: '2000' });
    await short.load();
    fake.script({ kind: 'status', status: 429, headers: { 'retry-after': '30' } });
    const e = error((await short.inferBatch([item()]))[0]);
    assert.equal(e.code, 'OVERLOADED');
    assert.deepEqual(e.details, { retryAfterS: 30 });
    assert.equal(fake.generations().length, 1);
    // The code and the wait survive the trip through gRPC's per-item error to the caller.
    const appError = fromItemError({ code: e.code, message: e.message, detailsJson: JSON.stringify(e.details) }, 'x');
    assert.equal(appError.retryAfterS, 30);
  });

  it('429 retries are bounded by OPENAI_MAX_RETRIES', async () => {
    const limited = backendFor({ OPENAI_MAX_RETRIES: '2' });
    await limited.load();
    const busy = { kind: 'status' as const, status: 429, headers: { 'retry-after-ms': '20' } };
    fake.script(busy, busy, busy, busy);
    const e = error((await limited.inferBatch([item()]))[0]);
    assert.equal(e.code, 'OVERLOADED');
    assert.equal(fake.generations().length, 3);
    assert.equal(limited.upstreamStats().retries, 2);
  });

  it('the API key is sent as a bearer token', async () => {
    const keyed = backendFor({ OPENAI_API_KEY: 'sk-test-123' });
    await keyed.load();
    await keyed.inferBatch([item()]);
    assert.equal(fake.generations()[0]!.headers.authorization, 'Bearer sk-test-123');
  });
});

describe('openai backend start-up checks', () => {
  let fake: FakeOpenAi;

  before(async () => {
    fake = await startFakeOpenAi(['tiny-llm', 'other-llm']);
  });
  after(() => fake?.close());

  const load = (env: Record<string, string>) => createOpenAiBackend(loadConfig(env)).load();

  it('an unreachable upstream fails the start with its URL named', async () => {
    const [port] = await freePorts(1);
    const url = `http://127.0.0.1:${port}/v1`;
    await assert.rejects(load({ OPENAI_BASE_URL: url, OPENAI_MODEL: 'x' }), (err: Error) => {
      assert.match(err.message, new RegExp(`cannot reach the upstream at ${url}/models`));
      assert.match(err.message, /ECONNREFUSED/);
      return true;
    });
  });

  it('a model the upstream does not serve fails the start, listing what it serves', async () => {
    await assert.rejects(
      load({ OPENAI_BASE_URL: fake.url, OPENAI_MODEL: 'gpt-9' }),
      /does not serve model "gpt-9" \(it serves: tiny-llm, other-llm\); set OPENAI_MODEL/,
    );
  });

  it('without OPENAI_MODEL the only served model is used; with several, OPENAI_MODEL is required', async () => {
    await assert.rejects(
      load({ OPENAI_BASE_URL: fake.url }),
      /set OPENAI_MODEL; .* serves several: tiny-llm, other-llm/,
    );
    const solo = await startFakeOpenAi(['solo-model']);
    try {
      const b = createOpenAiBackend(loadConfig({ OPENAI_BASE_URL: `http://127.0.0.1:${solo.port}` }));
      await b.load();
      assert.equal(b.describe().model, 'solo-model@fake');
    } finally {
      await solo.close();
    }
  });

  it('a refused key and a non-OpenAI server fail the start with what to fix', async () => {
    fake.models = { status: 401 };
    await assert.rejects(
      load({ OPENAI_BASE_URL: fake.url, OPENAI_MODEL: 'tiny-llm' }),
      /refused the API key \(401\); check OPENAI_API_KEY/,
    );
    fake.models = { status: 404, body: { error: 'not found' } };
    await assert.rejects(
      load({ OPENAI_BASE_URL: fake.url, OPENAI_MODEL: 'tiny-llm' }),
      /answered 404 .*OpenAI-compatible root/,
    );
    fake.models = { ids: ['tiny-llm'], ownedBy: 'fake' };
  });

  it('no OPENAI_BASE_URL at all is a clear error when the backend is built', () => {
    assert.throws(() => createOpenAiBackend(loadConfig({})), /set OPENAI_BASE_URL/);
  });
});

describe('the openai skill over real gRPC', () => {
  let fake: FakeOpenAi;

  before(async () => {
    fake = await startFakeOpenAi(['tiny-llm']);
  });
  after(() => fake?.close());

  const serverFor = (url: string) =>
    createSkillServer({
      name: 'openai',
      backend: createOpenAiBackend(loadConfig({ OPENAI_BASE_URL: url, OPENAI_TIMEOUT_MS: '5000' })),
      logger: pino({ level: 'silent' }),
      registry: new Registry(),
    });

  it('answers chat through SkillService, and reports upstream failures per item', async () => {
    const server = serverFor(fake.url);
    const port = await server.start('127.0.0.1', 0);
    const client = new SkillClient('openai', `127.0.0.1:${port}`);
    try {
      assert.equal(await client.check(2_000), 'SERVING');
      const p = { task: 'chat', maxTokens: 8, temperature: 0, modelVersion: '' };
      const res = await client.infer({ id: 'q1', text: 'ping', parameters: p }, 5_000);
      assert.equal(res.model, 'tiny-llm@fake');
      assert.equal(JSON.parse(res.json!).text, 'echo: ping');

      fake.script({ kind: 'status', status: 429, headers: { 'retry-after': '120' } });
      const batch = await client.inferBatch(
        [
          { id: 'a', text: 'x', parameters: p },
          { id: 'b', text: 'y', parameters: { ...p, task: 'completion' } },
        ],
        5_000,
      );
      const codes = batch.items.map((i) => i.error?.code || 'ok').sort();
      assert.deepEqual(codes, ['OVERLOADED', 'ok']);
      const overloaded = batch.items.find((i) => i.error?.code)!;
      assert.equal(fromItemError(overloaded.error!, 'openai').retryAfterS, 120);

      // A gRPC deadline shorter than the upstream's answer: the caller hears SKILL_TIMEOUT.
      fake.script({ kind: 'ok', delayMs: 3_000 });
      const slow = await client.infer({ id: 's', text: 'slow', parameters: p }, 600).then(
        (r) => r.error?.code,
        (err: AppError) => err.code,
      );
      assert.equal(slow, 'SKILL_TIMEOUT');
    } finally {
      client.close();
      await server.stop(1_000);
    }
  });

  it('a skill server whose upstream is unreachable does not start', async () => {
    const [port] = await freePorts(1);
    const server = serverFor(`http://127.0.0.1:${port}/v1`);
    await assert.rejects(
      server.start('127.0.0.1', 0),
      /cannot reach the upstream at http:\/\/127\.0\.0\.1:\d+\/v1\/models/,
    );
    await server.stop(100);
  });
});
