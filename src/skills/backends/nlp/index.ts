import type { BackendItem, BackendResult, ModelState, SkillBackend, SkillDescriptor } from '../../backend.js';
import { createEmbedder, type Embedder } from './embed.js';
import { extractTriples } from './triples.js';
import { sentenceTokens, type WinkNlp } from './wink-tokens.js';

const TASKS = ['sentiment', 'entities', 'pos', 'tokens', 'triples', 'embed'] as const;
type Task = (typeof TASKS)[number];

/** Sentiment scores within this distance of 0 are reported as neutral. */
const NEUTRAL_BAND = 0.05;

/**
 * English NLP on wink-nlp with the `wink-eng-lite-web-model` that ships in its npm package,
 * so it runs offline. The model is loaded by `load()`, not on import.
 */
export function createNlpBackend(): SkillBackend {
  let nlp: WinkNlp | undefined;
  let state: ModelState = 'UNLOADED';
  let modelVersion = 'unknown';
  // The word vectors load on the first embed item, not with the model: other tasks never pay for them.
  let embedder: Embedder | undefined;

  const descriptor = (): SkillDescriptor => ({
    backend: 'nlp',
    model: `wink-eng-lite-web-model@${modelVersion}`,
    tasks: TASKS,
    defaultTask: 'sentiment',
    deterministic: true,
  });

  function run(n: WinkNlp, task: Exclude<Task, 'embed'>, text: string): unknown {
    // Subject/verb/object facts, read from POS tags and lemmas (see triples.ts).
    if (task === 'triples') return { triples: extractTriples(sentenceTokens(n, text)) };
    const its = n.its;
    const doc = n.readDoc(text);
    switch (task) {
      case 'sentiment': {
        const score = doc.out(its.sentiment) as unknown as number;
        const sentences: { text: string; score: number }[] = [];
        doc.sentences().each((s: { out: (f?: typeof its.sentiment) => unknown }) => {
          sentences.push({ text: s.out() as string, score: s.out(its.sentiment) as number });
        });
        return { score, label: label(score), sentences };
      }
      case 'entities': {
        const details = doc.entities().out(its.detail) as unknown as { value: string; type: string }[];
        const spans = doc.entities().out(its.span) as unknown as [number, number][];
        return {
          entities: details.map((d, i) => ({ text: d.value, type: d.type, tokens: spans[i] })),
        };
      }
      case 'pos': {
        const tokens = doc.tokens();
        const texts = tokens.out();
        const pos = tokens.out(its.pos);
        // The type of its.lemma in wink-nlp's declarations is narrower than what tokens().out accepts.
        const lemma = tokens.out(its.lemma as unknown as typeof its.pos);
        return { tokens: texts.map((t, i) => ({ text: t, pos: pos[i], lemma: lemma[i] })) };
      }
      case 'tokens': {
        const tokens = doc.tokens();
        const texts = tokens.out();
        const types = tokens.out(its.type);
        return { tokens: texts.map((t, i) => ({ text: t, type: types[i] })) };
      }
    }
  }

  return {
    describe: descriptor,
    state: () => state,

    async prepare() {
      // Cheap: finds the packages and reads the model's version, without reading the model.
      try {
        for (const pkg of ['wink-nlp', 'wink-eng-lite-web-model']) import.meta.resolve(pkg);
        const pkg = await import('wink-eng-lite-web-model/package.json', { with: { type: 'json' } });
        modelVersion = (pkg.default as { version: string }).version;
      } catch (err) {
        throw new Error(`nlp: wink-nlp or its model is not installed (run npm ci): ${(err as Error).message}`, {
          cause: err,
        });
      }
    },

    async load() {
      if (state === 'READY') return;
      state = 'LOADING';
      try {
        const [{ default: winkNLP }, { default: model }, pkg] = await Promise.all([
          import('wink-nlp'),
          import('wink-eng-lite-web-model'),
          import('wink-eng-lite-web-model/package.json', { with: { type: 'json' } }),
        ]);
        modelVersion = (pkg.default as { version: string }).version;
        nlp = winkNLP(model);
        state = 'READY';
      } catch (err) {
        state = 'FAILED';
        throw new Error(`nlp: cannot load wink-eng-lite-web-model: ${(err as Error).message}`, { cause: err });
      }
    },

    async unload() {
      nlp = undefined;
      embedder = undefined;
      state = 'UNLOADED';
    },

    async inferBatch(items: readonly BackendItem[]): Promise<BackendResult[]> {
      if (!nlp) throw new Error('nlp: model is not loaded');
      const n = nlp;
      if (items.some((i) => i.task === 'embed')) {
        embedder ??= createEmbedder(n);
        // A failed load is not kept: the next embed item tries again.
        await embedder.ready.catch((err: unknown) => {
          embedder = undefined;
          throw err;
        });
      }
      return items.map((item): BackendResult => {
        if (!isTask(item.task)) {
          return {
            ok: false,
            error: {
              code: 'UNKNOWN_TASK',
              message: `nlp has no task "${item.task}"; tasks: ${TASKS.join(', ')}`,
              details: { task: item.task, tasks: [...TASKS] },
            },
          };
        }
        if (typeof item.text !== 'string' || item.text.length === 0) {
          return { ok: false, error: { code: 'BAD_REQUEST', message: 'nlp needs a non-empty text input' } };
        }
        if (item.task === 'embed')
          return { ok: true, output: { json: { task: item.task, ...embedder!.embed(item.text) } } };
        return { ok: true, output: { json: { task: item.task, ...(run(n, item.task, item.text) as object) } } };
      });
    },
  };
}

function isTask(task: string): task is Task {
  return (TASKS as readonly string[]).includes(task);
}

function label(score: number): 'positive' | 'negative' | 'neutral' {
  if (score > NEUTRAL_BAND) return 'positive';
  if (score < -NEUTRAL_BAND) return 'negative';
  return 'neutral';
}
