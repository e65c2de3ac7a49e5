import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import winkNLP from 'wink-nlp';
import model from 'wink-eng-lite-web-model';
import { extractTriples, type Triple } from '../src/skills/backends/nlp/triples.js';
import { sentenceTokens } from '../src/skills/backends/nlp/wink-tokens.js';
import { type LabelledItem, type Normaliser, type Scores, scoreTriples } from './triples-score.js';

/** The hand-labelled sample the triples task is measured on. */
export const samplePath = fileURLToPath(new URL('../test/fixtures/triples-sample.json', import.meta.url));

/** Confidence floors the figures are reported at, to show what the confidence is worth. */
export const THRESHOLDS = [0, 0.5, 0.7, 0.85] as const;

/** A labelled text; `dev` items were in view while the rules were written, `held-out` ones were not. */
export interface SampleItem extends LabelledItem {
  split: 'dev' | 'held-out';
}

export interface SplitScores {
  split: 'held-out' | 'dev' | 'all';
  /** Scores with every prediction, then with only those at or above each of {@link THRESHOLDS}. */
  byThreshold: { minConfidence: number; scores: Scores }[];
}

export interface Evaluation {
  sample: SampleItem[];
  predictions: Triple[][];
  splits: SplitScores[];
}

/** Runs the nlp skill's triple extractor (wink-nlp, as the skill does) over the sample and scores it. */
export function evaluateTriples(path = samplePath): Evaluation {
  const sample = (JSON.parse(readFileSync(path, 'utf8')) as { items: SampleItem[] }).items;
  const nlp = winkNLP(model);
  const predictions = sample.map((item) => extractTriples(sentenceTokens(nlp, item.text)));
  const normalise: Normaliser = (phrase) =>
    sentenceTokens(nlp, phrase)
      .flat()
      .filter((t) => t.pos !== 'PUNCT' && !(t.pos === 'DET' && ['a', 'an', 'the'].includes(t.lemma.toLowerCase())))
      .map((t) => t.lemma.toLowerCase());
  const split = (name: SplitScores['split']): SplitScores => {
    const picked = sample
      .map((item, i) => ({ item, p: predictions[i]! }))
      .filter(({ item }) => name === 'all' || item.split === name);
    return {
      split: name,
      byThreshold: THRESHOLDS.map((minConfidence) => ({
        minConfidence,
        scores: scoreTriples(
          picked.map((x) => x.item),
          picked.map((x) => x.p),
          normalise,
          minConfidence,
        ),
      })),
    };
  };
  return { sample, predictions, splits: [split('held-out'), split('dev'), split('all')] };
}
