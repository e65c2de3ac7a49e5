import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { http, startTestCluster } from '../helpers/cluster.js';
import { testConfig } from '../helpers/env.js';

/** These requests must reach the model, not the response cache. */
const noStore = { 'cache-control': 'no-store' };

describe('dynamic batching through the whole cluster', () => {
  let cluster: Awaited<ReturnType<typeof startTestCluster>>;
  let cleanup: () => Promise<void>;
  let auth: Record<string, string>;

  before(async () => {
    // A 20 ms budget (instead of 2 ms) so that concurrent requests reliably share batches even on
    // a busy machine; what is asserted does not depend on how they are grouped.
    const t = await testConfig({ BATCH_MAX_DELAY_MS: '20' });
    cleanup = t.cleanup;
    cluster = await startTestCluster(t.config, t.env);
    auth = { authorization: `Bearer ${cluster.devKey.key}` };
  });

  after(async () => {
    await cluster?.stop();
    await cleanup?.();
  });

  it('60 concurrent requests each get their own answer, and some were computed in batches', async () => {
    const requests = Array.from({ length: 60 }, (_, i) => {
      if (i % 3 === 2) return { input: `Visit ${i} Paris in May`, task: 'tokens' };
      const text = i % 3 === 0 ? `I love this wonderful city, day ${i}.` : `I hate this terrible place, day ${i}.`;
      return { input: text, task: 'sentiment' };
    });
    const answers = await Promise.all(
      requests.map((body) =>
        http(`${cluster.endpoint}/v1/skills/nlp/infer`, { json: body, headers: { ...auth, ...noStore } }),
      ),
    );

    answers.forEach((res, i) => {
      const req = requests[i]!;
      assert.equal(res.status, 200, `request ${i}: ${res.text}`);
      assert.equal(res.body.task, req.task);
      if (req.task === 'tokens') {
        assert.deepEqual(
          res.body.output.tokens.map((t: { text: string }) => t.text),
          req.input.split(' '),
          `request ${i} got its own tokens`,
        );
      } else {
        assert.equal(res.body.output.sentences[0].text, req.input, `request ${i} got its own sentence`);
        assert.equal(res.body.output.label, req.input.startsWith('I love') ? 'positive' : 'negative');
      }
      assert.ok(Number.isInteger(res.body.timings.batchSize) && res.body.timings.batchSize >= 1);
    });
    const sizes = answers.map((r) => r.body.timings.batchSize as number);
    assert.ok(
      sizes.some((s) => s > 1),
      `some requests shared a batch; sizes: ${sizes.join(',')}`,
    );
    assert.ok(Math.max(...sizes) <= 32, 'never above BATCH_MAX_SIZE');
  });
});
