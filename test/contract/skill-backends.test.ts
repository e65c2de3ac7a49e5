import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/index.js';
import type { BackendItem, BackendResult } from '../../src/skills/backend.js';
import { createNlpBackend } from '../../src/skills/backends/nlp/index.js';
import { createOnnxBackend } from '../../src/skills/backends/onnx/index.js';
import { createOpenAiBackend } from '../../src/skills/backends/openai/index.js';
import { makeTensor, tensorValues } from '../../src/skills/tensors.js';
import { startFakeOpenAi } from '../helpers/fake-openai.js';
import { adderModel, scratchRepository, writeModel } from '../helpers/models.js';
import { runSkillBackendContract } from './skill-backend.contract.js';

const item = (over: Partial<BackendItem> & { task: string }): BackendItem => ({
  id: 'i',
  maxTokens: 0,
  modelVersion: '',
  ...over,
});

const json = (r: BackendResult): any => {
  assert.ok(r.ok && 'json' in r.output, JSON.stringify(r));
  return r.output.json;
};

runSkillBackendContract('nlp', async () => ({
  create: () => createNlpBackend(),
  // `tokens` echoes the text it was given: the first token says which item this was.
  item: (i) => item({ id: `n${i}`, task: 'tokens', text: `w${i} is here` }),
  identify: (r) => Number(json(r).tokens[0].text.slice(1)),
  badItems: [item({ task: 'no-such-task', text: 'x' }), item({ task: 'sentiment', text: '' })],
  unbreakable: "nlp's model ships in its npm package: nothing outside the code can keep it from loading",
  close: async () => undefined,
}));

runSkillBackendContract('onnx', async () => {
  const logger = pino({ level: 'silent' });
  const repos: ReturnType<typeof scratchRepository>[] = [];
  // The adder (a + b) with b = 0 answers exactly a: the sum says which item it was.
  const repository = () => {
    const repo = scratchRepository(['classifier']);
    writeModel(repo.dir, adderModel());
    repos.push(repo);
    return repo.dir;
  };
  const backendOn = (dir: string) =>
    createOnnxBackend({ repository: dir, only: [], idleUnloadMs: 0, intraOpThreads: 1, logger });
  const adder = (a: number[], shape = [1, 2]) =>
    item({
      task: 'adder',
      tensors: [
        makeTensor('a', 'FP32', shape, a),
        makeTensor(
          'b',
          'FP32',
          shape,
          a.map(() => 0),
        ),
      ],
    });
  const dir = repository();
  return {
    create: () => backendOn(dir),
    item: (i) => ({ ...adder([i, i]), id: `o${i}` }),
    identify: (r) => {
      assert.ok(r.ok && 'tensors' in r.output, JSON.stringify(r));
      return tensorValues(r.output.tensors.find((t) => t.name === 'sum')!)[0] as number;
    },
    badItems: [adder([1, 2, 3], [1, 3]), item({ task: 'no-such-model', tensors: [] })],
    async broken() {
      // Checked good at start-up, then the files go bad: the first load fails.
      const brokenDir = repository();
      return {
        backend: backendOn(brokenDir),
        afterStart() {
          for (const model of ['adder', 'classifier'])
            writeFileSync(join(brokenDir, model, '1', 'model.onnx'), 'not an onnx model');
        },
      };
    },
    close: async () => repos.forEach((r) => r.cleanup()),
  };
});

runSkillBackendContract('openai', async () => {
  const fake = await startFakeOpenAi(['tiny-llm']);
  const config = (url: string) =>
    loadConfig({ OPENAI_BASE_URL: url, OPENAI_MODEL: 'tiny-llm', OPENAI_TIMEOUT_MS: '60000' });
  const others: { close(): Promise<void> }[] = [];
  return {
    create: () => createOpenAiBackend(config(fake.url)),
    // The fake echoes the prompt: `echo: item 3`.
    item: (i) => item({ id: `a${i}`, task: 'completion', text: `item ${i}` }),
    identify: (r) => Number(/^echo: item (\d+)$/.exec(json(r).text)![1]),
    badItems: [item({ task: 'no-such-task', text: 'x' }), item({ task: 'chat', text: '' })],
    slowItem() {
      fake.script({ kind: 'ok', delayMs: 10 * 60_000 });
      return item({ task: 'completion', text: 'take your time' });
    },
    gaveUp: () => fake.generations().some((r) => r.body?.prompt === 'take your time' && r.aborted),
    async broken() {
      // An upstream that does not serve the model asked for.
      const other = await startFakeOpenAi(['some-other-llm']);
      others.push(other);
      return { backend: createOpenAiBackend(config(other.url)) };
    },
    async close() {
      await fake.close();
      for (const o of others) await o.close();
    },
  };
});
