import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type FakeOpenAi, startFakeOpenAi } from '../helpers/fake-openai.js';
import { startTestCluster, withDevKey } from '../helpers/cluster.js';
import { eventually, testConfig } from '../helpers/env.js';

describe('the openai skill in the cluster, when an upstream is configured', () => {
  let fake: FakeOpenAi;
  let cluster: Awaited<ReturnType<typeof startTestCluster>>;
  let cleanup: () => Promise<void>;
  let base: string;
  const http = withDevKey(() => cluster);
  const infer = (body: unknown) => http(`${base}/v1/skills/openai/infer`, { json: body });

  before(async () => {
    fake = await startFakeOpenAi(['tiny-llm']);
    // No SKILLS: setting OPENAI_BASE_URL is what adds the openai skill to `up`.
    const t = await testConfig({ OPENAI_BASE_URL: fake.url, OPENAI_MODEL: 'tiny-llm' });
    cleanup = t.cleanup;
    assert.deepEqual(t.config.SKILLS, ['nlp', 'onnx', 'openai']);
    cluster = await startTestCluster(t.config, t.env);
    base = cluster.endpoint;
  });

  after(async () => {
    await cluster?.stop();
    await cleanup?.();
    await fake?.close();
  });

  it('is listed next to nlp, with its upstream model and not deterministic', async () => {
    // The cluster is ready once any skill serves; the openai replica may register a moment later.
    const res = await eventually(async () => {
      const r = await http(`${base}/v1/skills/openai`);
      assert.equal(r.body?.status, 'available', r.text);
      return r;
    });
    assert.equal(res.body.model, 'tiny-llm@fake');
    assert.deepEqual(res.body.tasks, ['chat', 'completion']);
    assert.equal(res.body.deterministic, false);
    assert.equal(res.body.instances[0].state, 'READY');
  });

  it('answers chat through nginx, gateway, queue, dispatcher and gRPC', async () => {
    fake.reset();
    const res = await infer({ input: 'Hello from the edge', task: 'chat', max_tokens: 12, temperature: 0 });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.output.text, 'echo: Hello from the edge');
    assert.equal(res.body.model, 'tiny-llm@fake');
    const sent = fake.generations()[0]!.body;
    assert.equal(sent.max_tokens, 12);
    assert.equal(sent.temperature, 0);
  });

  it("an upstream 429 it cannot wait out is 503 OVERLOADED with the upstream's Retry-After", async () => {
    fake.script({ kind: 'status', status: 429, headers: { 'retry-after': '120' } });
    const res = await infer({ input: 'busy?', task: 'completion' });
    assert.equal(res.status, 503, res.text);
    assert.equal(res.body.error.code, 'OVERLOADED');
    assert.equal(res.headers.get('retry-after'), '120');
  });

  it('an upstream 400 about the input is a 400 that says why', async () => {
    fake.script({ kind: 'status', status: 400, body: { error: { message: 'prompt is too long for this model' } } });
    const res = await infer({ input: 'long', task: 'chat' });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.error.code, 'BAD_REQUEST');
    assert.match(res.body.error.message, /prompt is too long/);
  });
});
