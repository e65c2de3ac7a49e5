import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { type FakeOpenAi, startFakeOpenAi } from '../helpers/fake-openai.js';
import { startTestCluster } from '../helpers/cluster.js';
import { eventually, testConfig } from '../helpers/env.js';

const user = (content: string) => [{ role: 'user' as const, content }];

/** Streamed generations through nginx, gateway, queue, dispatcher (token streams in Redis), skill and a streaming upstream. */
describe('OpenAI-compatible streaming', () => {
  let fake: FakeOpenAi;
  let cluster: Awaited<ReturnType<typeof startTestCluster>>;
  let cleanup: () => Promise<void>;
  let client: OpenAI;

  before(async () => {
    fake = await startFakeOpenAi(['tiny-llm']);
    const t = await testConfig({
      OPENAI_BASE_URL: fake.url,
      OPENAI_MODEL: 'tiny-llm',
      SKILLS: 'nlp,openai',
      // Every stream through the queue and the Redis token channel (an idle queue would be
      // bypassed: openai-api.test.ts covers that path).
      QUEUE_BYPASS_WHEN_IDLE: 'false',
    });
    cleanup = t.cleanup;
    cluster = await startTestCluster(t.config, t.env);
    client = new OpenAI({ apiKey: cluster.devKey.key, baseURL: `${cluster.endpoint}/v1`, maxRetries: 0 });
    await eventually(async () => {
      assert.ok((await client.models.list()).data.some((m) => m.id === 'tiny-llm'));
    });
  });

  after(async () => {
    await cluster?.stop();
    await cleanup?.();
    await fake?.close();
  });

  it('streams chat chunks in order, ending with the finish reason and the usage', async () => {
    fake.script({ kind: 'ok', tokenDelayMs: 20 });
    const stream = await client.chat.completions.create({
      model: 'tiny-llm',
      messages: user('one two three four'),
      stream: true,
      stream_options: { include_usage: true },
    });
    const deltas: string[] = [];
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      const choice = chunk.choices[0];
      if (choice?.delta.content) deltas.push(choice.delta.content);
      if (choice?.finish_reason) finish = choice.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.deepEqual(deltas, ['echo: ', 'one ', 'two ', 'three ', 'four']);
    assert.equal(finish, 'stop');
    assert.deepEqual(usage, { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 });
    assert.equal(fake.generations().at(-1)!.body.stream, true);
  });

  it('streams text completions', async () => {
    const stream = await client.completions.create({ model: 'tiny-llm', prompt: 'Once upon a time', stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
    assert.equal(text, 'echo: Once upon a time');
  });

  it('replays a cached deterministic answer as the same chunks', async () => {
    const ask = () =>
      client.chat.completions
        .create({ model: 'tiny-llm', messages: user(`cache me ${Date.now() >> 16}`), temperature: 0, stream: true })
        .withResponse();
    const collect = async (s: AsyncIterable<OpenAI.ChatCompletionChunk>) => {
      const out: string[] = [];
      for await (const c of s) if (c.choices[0]?.delta.content) out.push(c.choices[0].delta.content);
      return out;
    };
    const first = await ask();
    const firstDeltas = await collect(first.data);
    assert.equal(first.response.headers.get('x-cache'), 'MISS');
    const calls = fake.generations().length;
    const second = await eventually(async () => {
      const r = await ask();
      assert.equal(r.response.headers.get('x-cache'), 'HIT');
      return r;
    });
    assert.deepEqual(await collect(second.data), firstDeltas);
    assert.ok(firstDeltas.length > 2);
    assert.equal(fake.generations().length, calls, 'the upstream was not asked again');
  });

  it('an upstream that stalls mid-stream: the tokens so far, then an error event by the deadline', async () => {
    fake.script({ kind: 'stall', afterTokens: 2 });
    const stream = await client.chat.completions.create(
      { model: 'tiny-llm', messages: user('alpha beta gamma delta'), stream: true },
      { headers: { 'x-deadline-ms': '2500' } },
    );
    const deltas: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const chunk of stream)
          if (chunk.choices[0]?.delta.content) deltas.push(chunk.choices[0].delta.content);
      })(),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.APIError, String(err));
        assert.match(String(err.message), /time|deadline/i);
        return true;
      },
    );
    // The first tokens reached the client while the upstream had not finished (it never did).
    assert.deepEqual(deltas, ['echo: ', 'alpha ']);
  });

  it('a client that disconnects cancels the upstream call', async () => {
    fake.reset();
    fake.script({ kind: 'ok', tokenDelayMs: 300, text: 'w '.repeat(60) });
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'tiny-llm', messages: user('a long answer please'), stream: true },
      { signal: controller.signal },
    );
    let seen = 0;
    try {
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content && ++seen === 2) controller.abort();
      }
    } catch {
      // The SDK may raise its abort error or just end the iteration.
    }
    assert.equal(seen, 2);
    await eventually(async () => {
      const upstream = fake.generations().at(-1)!;
      assert.equal(upstream.aborted, true, 'the upstream request was cancelled');
    });
  });

  it('a dispatcher that dies mid-stream ends the stream with an error, not a hang', async () => {
    fake.script({ kind: 'ok', tokenDelayMs: 200, text: 'x '.repeat(100) });
    const stream = await client.chat.completions.create({
      model: 'tiny-llm',
      messages: user('keep going'),
      stream: true,
    });
    const dispatcher = cluster.processes.find((p) => p.spec.name.startsWith('dispatcher'))!;
    let seen = 0;
    await assert.rejects(
      (async () => {
        for await (const chunk of stream) {
          if (chunk.choices[0]?.delta.content && ++seen === 2) process.kill(dispatcher.pid!, 'SIGKILL');
        }
      })(),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.APIError, String(err));
        assert.match(String(err.message), /dispatcher|went away|stopped/i);
        return true;
      },
    );
    assert.ok(seen >= 2 && seen < 100, `${seen} chunks, then the error`);
  });
});
