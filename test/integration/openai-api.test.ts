import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { type FakeOpenAi, startFakeOpenAi } from '../helpers/fake-openai.js';
import { startTestCluster } from '../helpers/cluster.js';
import { eventually, testConfig } from '../helpers/env.js';
import { createKeys } from '../helpers/keys.js';

const cosine = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0);

/** The OpenAI-compatible API, driven by the official `openai` package through nginx. */
describe('OpenAI-compatible API with the official client', () => {
  let fake: FakeOpenAi;
  let cluster: Awaited<ReturnType<typeof startTestCluster>>;
  let cleanup: () => Promise<void>;
  let client: OpenAI;
  let limited: OpenAI;
  let tokenLimited: OpenAI;
  let base: string;

  before(async () => {
    fake = await startFakeOpenAi(['tiny-llm']);
    const t = await testConfig({
      OPENAI_BASE_URL: fake.url,
      OPENAI_MODEL: 'tiny-llm',
      RATE_LIMITS: 'free=3,standard=100000,premium=100000',
      TOKEN_LIMITS: 'free=100000,standard=60,premium=10000000',
      // The first embedding loads the word vectors (seconds on a busy machine).
      REQUEST_TIMEOUT_MS: '30000',
    });
    cleanup = t.cleanup;
    cluster = await startTestCluster(t.config, t.env);
    base = `${cluster.endpoint}/v1`;
    const keys = await createKeys(t.config, {
      free: { tenant: 'small', tier: 'free' },
      standard: { tenant: 'wordy', tier: 'standard' },
    });
    tokenLimited = new OpenAI({ apiKey: keys.standard!.authorization.slice(7), baseURL: base, maxRetries: 0 });
    client = new OpenAI({ apiKey: cluster.devKey.key, baseURL: base, maxRetries: 0 });
    limited = new OpenAI({ apiKey: keys.free!.authorization.slice(7), baseURL: base, maxRetries: 0 });
    // Every skill registered (the openai one may come a moment after the cluster is ready).
    await eventually(
      async () => {
        const ids = (await client.models.list()).data.map((m) => m.id);
        assert.ok(ids.includes('tiny-llm') && ids.includes('nlp-embed'), ids.join());
      },
      { timeoutMs: 20_000 },
    );
  });

  after(async () => {
    await cluster?.stop();
    await cleanup?.();
    await fake?.close();
  });

  it('lists the servable models, each owned by its skill', async () => {
    const models = (await client.models.list()).data;
    const byId = new Map(models.map((m) => [m.id, m]));
    assert.equal(byId.get('nlp-embed')?.owned_by, 'nlp');
    assert.equal(byId.get('onnx/embedder')?.owned_by, 'onnx');
    assert.equal(byId.get('tiny-llm')?.owned_by, 'openai');
    assert.equal(models[0]?.object, 'model');
    assert.equal((await client.models.retrieve('onnx/embedder')).id, 'onnx/embedder');
  });

  it('embeds one text and many, as floats and as base64, with usage', async () => {
    const one = await client.embeddings.create({
      model: 'nlp-embed',
      input: 'The king rules.',
      encoding_format: 'float',
    });
    assert.equal(one.data.length, 1);
    assert.equal(one.data[0]!.embedding.length, 100);
    assert.ok(Math.abs(cosine(one.data[0]!.embedding, one.data[0]!.embedding) - 1) < 1e-3, 'unit length');
    assert.equal(one.usage.prompt_tokens, 4);
    const inputs = ['alpha beta', 'gamma delta', 'The king rules.'];
    // No encoding_format: the SDK asks for base64 and decodes it itself.
    const many = await client.embeddings.create({ model: 'nlp-embed', input: inputs });
    assert.deepEqual(
      many.data.map((d) => d.index),
      [0, 1, 2],
    );
    for (const d of many.data) assert.equal(d.embedding.length, 100);
    const again = many.data[2]!.embedding;
    for (let i = 0; i < 100; i++) assert.ok(Math.abs(again[i]! - one.data[0]!.embedding[i]!) < 1e-5);
  });

  it('means something: related words and paraphrases are closer than unrelated ones', async () => {
    const texts = [
      'king',
      'queen',
      'banana',
      'The cat sat on the mat.',
      'A kitten was sitting on the rug.',
      'Stock markets fell sharply after the interest rate decision.',
    ];
    const res = await client.embeddings.create({ model: 'nlp-embed', input: texts, encoding_format: 'float' });
    const [king, queen, banana, cat, kitten, markets] = res.data.map((d) => d.embedding) as number[][];
    assert.ok(cosine(king!, queen!) > cosine(king!, banana!), 'king~queen > king~banana');
    assert.ok(cosine(cat!, kitten!) > cosine(cat!, markets!), 'paraphrase > unrelated');
  });

  it('embeds token arrays with the ONNX embedder', async () => {
    const res = await client.embeddings.create({
      model: 'onnx/embedder',
      input: [
        [1, 2, 3],
        [4, 5],
      ],
      encoding_format: 'float',
    });
    assert.equal(res.data.length, 2);
    assert.equal(res.data[0]!.embedding.length, 64);
    assert.equal(res.usage.prompt_tokens, 5);
  });

  it('caches embeddings per input', async () => {
    const input = `cached sentence ${Date.now()}`;
    const first = await fetch(`${base}/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${cluster.devKey.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'nlp-embed', input }),
    });
    assert.equal(first.headers.get('x-cache'), 'MISS');
    const second = await fetch(`${base}/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${cluster.devKey.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'nlp-embed', input: [input, input] }),
    });
    assert.equal(second.headers.get('x-cache'), 'HIT');
  });

  it("refuses options it cannot honour with 400 in OpenAI's error body", async () => {
    await assert.rejects(
      client.embeddings.create({ model: 'nlp-embed', input: 'x', dimensions: 8 }),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.BadRequestError);
        assert.equal(err.param, 'dimensions');
        assert.equal(err.type, 'invalid_request_error');
        return true;
      },
    );
    const res = await fetch(`${base}/embeddings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${cluster.devKey.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'nlp-embed', input: 'x', encoding_format: 'int8' }),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(body.error.param, 'encoding_format');
  });

  it('answers chat completions from the upstream, with usage', async () => {
    fake.reset();
    const res = await client.chat.completions.create({
      model: 'tiny-llm',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hello there' },
      ],
      max_tokens: 16,
      temperature: 0.5,
    });
    assert.equal(res.object, 'chat.completion');
    assert.equal(res.model, 'tiny-llm');
    assert.equal(res.choices[0]!.message.content, 'echo: Hello there');
    assert.equal(res.choices[0]!.finish_reason, 'stop');
    assert.deepEqual(res.usage, { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 });
    const sent = fake.generations()[0]!.body;
    assert.deepEqual(sent.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hello there' },
    ]);
    assert.equal(sent.max_tokens, 16);
    assert.equal(sent.temperature, 0.5);
  });

  it('streams a chat completion, with usage', async () => {
    fake.script({ kind: 'ok', tokenDelayMs: 10 });
    const stream = await client.chat.completions.create({
      model: 'tiny-llm',
      messages: [{ role: 'user', content: 'one two three' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const deltas: string[] = [];
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) deltas.push(chunk.choices[0].delta.content);
      usage ??= chunk.usage;
    }
    assert.deepEqual(deltas, ['echo: ', 'one ', 'two ', 'three']);
    assert.equal(usage?.completion_tokens, 4);
  });

  it('answers text completions', async () => {
    const res = await client.completions.create({ model: 'tiny-llm', prompt: 'Once upon', max_tokens: 5 });
    assert.equal(res.object, 'text_completion');
    assert.equal(res.choices[0]!.text, 'echo: Once upon');
    assert.equal(res.usage?.total_tokens, 5);
  });

  it('refuses generation options it cannot pass on, and embedding models for chat', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'tiny-llm', messages: [{ role: 'user', content: 'x' }], top_p: 0.5 }),
      (err: unknown) => err instanceof OpenAI.BadRequestError && err.param === 'top_p',
    );
    await assert.rejects(
      client.chat.completions.create({ model: 'nlp-embed', messages: [{ role: 'user', content: 'x' }] }),
      OpenAI.BadRequestError,
    );
  });

  it("raises the SDK's own error classes: 401, 404, 429", async () => {
    const stranger = new OpenAI({ apiKey: 'sk-not-a-key', baseURL: base, maxRetries: 0 });
    await assert.rejects(stranger.models.list(), OpenAI.AuthenticationError);
    await assert.rejects(
      client.chat.completions.create({ model: 'no-such-llm', messages: [{ role: 'user', content: 'x' }] }),
      OpenAI.NotFoundError,
    );
    await assert.rejects(client.embeddings.create({ model: 'no-such-model', input: 'x' }), (err: unknown) => {
      assert.ok(err instanceof OpenAI.NotFoundError);
      assert.equal(err.code, 'model_not_found');
      return true;
    });
    let refused: unknown;
    for (let i = 0; i < 10 && !refused; i++) {
      await limited.embeddings
        .create({ model: 'nlp-embed', input: 'limit me' })
        .catch((err: unknown) => (refused = err));
    }
    assert.ok(refused instanceof OpenAI.RateLimitError, String(refused));
    assert.ok(Number(refused.headers?.get('retry-after')) >= 1);
    assert.equal(refused.headers?.get('x-ratelimit-limit-requests'), '3');
    assert.equal(refused.headers?.get('x-ratelimit-remaining-requests'), '0');
  });

  it('limits tokens per minute per key: reserved from an estimate, corrected by the usage', async () => {
    const ask = (max_tokens: number) =>
      tokenLimited.chat.completions.create({
        model: 'tiny-llm',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens,
      });
    // 60 tokens a minute. Each call reserves about 41 (its prompt and max_tokens) and uses 5: the
    // second fits only because the first one's unused reservation was given back.
    await ask(40);
    const second = await ask(40).withResponse();
    assert.ok(Number(second.response.headers.get('x-ratelimit-remaining-tokens')) < 60);
    assert.equal(second.response.headers.get('x-ratelimit-limit-tokens'), '60');
    await assert.rejects(ask(1000), (err: unknown) => {
      assert.ok(err instanceof OpenAI.RateLimitError, String(err));
      assert.match(err.message, /tokens per minute/);
      assert.ok(Number(err.headers?.get('retry-after')) >= 1);
      assert.equal(err.headers?.get('x-ratelimit-limit-tokens'), '60');
      return true;
    });
  });
});
