import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { it } from 'node:test';
import { startCluster } from '../../src/cluster/supervisor.js';
import { adminUrls, cliPath, http, startTestCluster } from '../helpers/cluster.js';
import { testConfig } from '../helpers/env.js';
import { startFakeOpenAi } from '../helpers/fake-openai.js';

it('is ready when `up` says so: every process ready, every skill answers at once', async () => {
  // The openai skill asks its upstream for its models at start; this upstream (a fake: no LLM
  // server runs here) takes 4 s to answer, so that skill comes up long after nlp. A cluster
  // called ready when the first skill was would not know it yet (404 SKILL_NOT_FOUND).
  const fake = await startFakeOpenAi(['tiny-llm']);
  fake.modelsDelayMs = 4_000;
  const t = await testConfig({ SKILLS: 'nlp,openai', OPENAI_BASE_URL: fake.url, OPENAI_MODEL: 'tiny-llm' });
  const cluster = await startTestCluster(t.config, t.env);
  try {
    const auth = { authorization: `Bearer ${cluster.devKey.key}` };
    const [nlp, openai, job] = await Promise.all([
      http(`${cluster.endpoint}/v1/skills/nlp/infer`, { json: { input: `right away ${randomUUID()}` }, headers: auth }),
      http(`${cluster.endpoint}/v1/skills/openai/infer`, { json: { input: 'hello', task: 'chat' }, headers: auth }),
      http(`${cluster.endpoint}/v1/jobs`, { json: { skill: 'openai', input: 'hello', task: 'chat' }, headers: auth }),
    ]);
    assert.equal(nlp.status, 200, nlp.text);
    assert.equal(openai.status, 200, openai.text);
    assert.equal(job.status, 202, job.text);
    for (const role of ['skill-', 'dispatcher', 'gateway']) {
      for (const url of await adminUrls(cluster, role)) {
        const ready = await http(`${url}/readyz`);
        assert.equal(ready.body.status, 'ready', `${url}: ${ready.text}`);
      }
    }
  } finally {
    await cluster.stop();
    await fake.close();
    await t.cleanup();
  }
});

it('names what it is still waiting for when the cluster does not become ready', async () => {
  // A skill that never has enough free memory never answers SERVING.
  const t = await testConfig({ SKILLS: 'nlp', GATEWAY_COUNT: '1', MIN_FREE_MEMORY_MB: '100000000' });
  const printed: string[] = [];
  try {
    await assert.rejects(
      startCluster({ config: t.config, env: t.env, cliPath, print: (l) => printed.push(l), readyTimeoutMs: 12_000 }),
      (err: Error) => {
        assert.match(err.message, /still waiting for: .*skill-nlp \(model: /, err.message);
        assert.match(
          err.message,
          /gateway-1 \(skills\) \(nlp has no live replica yet|gateway-1 \(skills: /,
          err.message,
        );
        return true;
      },
    );
    assert.ok(
      printed.some((l) => /^skillserve: waiting for .*skill-nlp/.test(l)),
      `progress is printed while waiting:\n${printed.join('\n')}`,
    );
  } finally {
    await t.cleanup();
  }
});
