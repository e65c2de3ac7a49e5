import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type AppError } from '../../src/errors/index.js';
import { SkillClient } from '../../src/skills/client.js';
import { startTestSkill, type TestSkill } from '../helpers/skill.js';

describe('the nlp skill over real gRPC', () => {
  let skill: TestSkill;
  let client: SkillClient;

  before(async () => {
    skill = await startTestSkill();
    client = skill.client();
  });

  after(() => skill?.stop());

  it('serves grpc.health.v1 once the model is loaded', async () => {
    assert.equal(await client.check(2_000), 'SERVING');
    assert.equal(await client.check(2_000, 'skillserve.v1.SkillService'), 'SERVING');
  });

  it('Infer answers with the model output, model name and timing', async () => {
    const res = await client.infer(
      {
        id: 'a',
        text: 'I love this wonderful city.',
        parameters: { task: 'sentiment', maxTokens: 0, modelVersion: '' },
      },
      5_000,
    );
    assert.equal(res.id, 'a');
    assert.equal(res.output, 'json');
    const out = JSON.parse(res.json!);
    assert.equal(out.label, 'positive');
    assert.match(res.model, /^wink-eng-lite-web-model@/);
    assert.ok(res.timing!.totalUs >= res.timing!.computeUs);
    assert.equal(res.timing!.batchSize, 1);
  });

  it('Infer answers the triples task with facts and confidences', async () => {
    const res = await client.infer(
      {
        id: 't',
        text: 'My sister Maria lives in Madrid and loves her new job.',
        parameters: { task: 'triples', maxTokens: 0, modelVersion: '' },
      },
      5_000,
    );
    const out = JSON.parse(res.json!);
    assert.equal(out.task, 'triples');
    const facts = out.triples.map((t: { subject: string; relation: string; object: string }) =>
      [t.subject, t.relation, t.object].join(' | '),
    );
    assert.ok(facts.includes('Maria | live in | Madrid'), facts.join('; '));
    assert.ok(facts.includes('Maria | love | her new job'), facts.join('; '));
    for (const t of out.triples) assert.ok(t.confidence > 0 && t.confidence <= 1);
  });

  it('InferBatch keeps item order and fails only the bad item', async () => {
    const p = (task: string) => ({ task, maxTokens: 0, modelVersion: '' });
    const res = await client.inferBatch(
      [
        { id: '1', text: 'Terrible, awful, bad.', parameters: p('sentiment') },
        { id: '2', text: 'x', parameters: p('translate') },
        { id: '3', text: 'Paris in May', parameters: p('tokens') },
        { id: '4', parameters: p('sentiment') },
      ],
      5_000,
    );
    assert.deepEqual(
      res.items.map((i) => i.id),
      ['1', '2', '3', '4'],
    );
    assert.equal(JSON.parse(res.items[0]!.json!).label, 'negative');
    assert.equal(res.items[1]!.error!.code, 'UNKNOWN_TASK');
    assert.deepEqual(
      JSON.parse(res.items[2]!.json!).tokens.map((t: { text: string }) => t.text),
      ['Paris', 'in', 'May'],
    );
    assert.equal(res.items[3]!.error!.code, 'BAD_REQUEST');
    assert.equal(res.timing!.batchSize, 4);
  });

  it('an empty batch is INVALID_ARGUMENT, mapped to BAD_REQUEST', async () => {
    await assert.rejects(client.inferBatch([], 2_000), (err: AppError) => err.code === 'BAD_REQUEST');
  });

  it('GetMetrics reports state and counts without prompts or paths', async () => {
    const m = await client.metrics(2_000);
    assert.equal(m.skill, 'nlp');
    assert.equal(m.modelState, 'READY');
    assert.ok(m.requestsTotal >= 2);
    assert.ok(m.errorsTotal >= 2);
    assert.deepEqual(m.tasks, ['sentiment', 'entities', 'pos', 'tokens', 'triples', 'embed']);
    assert.ok(!JSON.stringify(m).includes('/'), 'no file paths');
  });

  it('a replica that is gone is SKILL_UNAVAILABLE, quickly', async () => {
    const gone = new SkillClient('nlp', '127.0.0.1:1');
    try {
      await assert.rejects(
        gone.infer({ id: 'x', text: 'hi' }, 2_000),
        (err: AppError) => err.code === 'SKILL_UNAVAILABLE',
      );
    } finally {
      gone.close();
    }
  });

  it('Check follows the serving status the server sets', async () => {
    const other = await startTestSkill();
    const c = other.client();
    try {
      assert.equal(await c.check(2_000), 'SERVING');
      const statuses: string[] = [];
      other.server.health.setStatus('', 'NOT_SERVING');
      statuses.push(await c.check(2_000));
      assert.deepEqual(statuses, ['NOT_SERVING']);
    } finally {
      await other.stop(500);
    }
  });
});
