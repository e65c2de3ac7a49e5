/**
 * Scores extracted triples against hand-labelled ones: precision and recall with an exact match
 * on normalised lemmas, and a looser partial match. Pure: the caller supplies the normaliser
 * (eval/triples.ts uses wink-nlp's lemmas), so the scoring itself can be tested on its own.
 */

/** A gold fact: subject, relation, object; each field may list alternatives separated by "|". */
export type GoldTriple = [string, string, string];

export interface LabelledItem {
  text: string;
  triples: GoldTriple[];
}

export interface PredictedTriple {
  subject: string;
  relation: string;
  object: string;
  confidence: number;
}

/** Turns a phrase into the lemmas it is compared by (lower case, no articles or punctuation). */
export type Normaliser = (phrase: string) => string[];

export interface Figures {
  matched: number;
  precision: number;
  recall: number;
  f1: number;
}

export interface Scores {
  items: number;
  gold: number;
  predicted: number;
  exact: Figures;
  partial: Figures;
}

/** Words that carry no content of their own: two phrases sharing only these do not partially match. */
const FUNCTION_WORDS = new Set([
  'a',
  'an',
  'the',
  'my',
  'your',
  'his',
  'her',
  'its',
  'our',
  'their',
  'of',
  'in',
  'at',
  'to',
  'on',
  'for',
  'with',
  'by',
  'from',
  'as',
  'near',
  'since',
  'not',
]);

type Field = 'subject' | 'relation' | 'object';
const FIELDS: Field[] = ['subject', 'relation', 'object'];

interface NormalisedGold {
  exact: Record<Field, string[]>;
  content: Record<Field, Set<string>[]>;
}

/**
 * Precision and recall of `predictions[i]` against `items[i].triples`. Each gold fact is matched
 * at most once (the most confident prediction first), so a duplicate never counts twice.
 * Exact: every field's normalised lemmas equal one of the gold alternatives. Partial: every
 * field shares at least one content lemma with an alternative (a relation may share "be").
 */
export function scoreTriples(
  items: readonly LabelledItem[],
  predictions: readonly (readonly PredictedTriple[])[],
  normalise: Normaliser,
  minConfidence = 0,
): Scores {
  const key = (phrase: string) => normalise(phrase).join(' ');
  const content = (phrase: string, field: Field) =>
    new Set(normalise(phrase).filter((w) => !FUNCTION_WORDS.has(w) || (field === 'relation' && w === 'be')));
  let gold = 0;
  let predicted = 0;
  let exact = 0;
  let partial = 0;
  items.forEach((item, i) => {
    const golds: NormalisedGold[] = item.triples.map((t) => {
      const alternatives = (f: number) => t[f]!.split('|').map((a) => a.trim());
      return {
        exact: Object.fromEntries(FIELDS.map((f, n) => [f, alternatives(n).map(key)])) as Record<Field, string[]>,
        content: Object.fromEntries(FIELDS.map((f, n) => [f, alternatives(n).map((a) => content(a, f))])) as Record<
          Field,
          Set<string>[]
        >,
      };
    });
    const preds = [...(predictions[i] ?? [])]
      .filter((p) => p.confidence >= minConfidence)
      .sort((a, b) => b.confidence - a.confidence);
    gold += golds.length;
    predicted += preds.length;
    exact += matchCount(preds, golds, (p, g) => FIELDS.every((f) => g.exact[f].includes(key(p[f]))));
    partial += matchCount(preds, golds, (p, g) =>
      FIELDS.every((f) => {
        const words = content(p[f], f);
        return g.content[f].some((alt) => [...alt].some((w) => words.has(w)));
      }),
    );
  });
  return {
    items: items.length,
    gold,
    predicted,
    exact: figures(exact, predicted, gold),
    partial: figures(partial, predicted, gold),
  };
}

function matchCount(
  preds: readonly PredictedTriple[],
  golds: readonly NormalisedGold[],
  matches: (p: PredictedTriple, g: NormalisedGold) => boolean,
): number {
  const used = new Set<number>();
  for (const p of preds) {
    const g = golds.findIndex((gold, n) => !used.has(n) && matches(p, gold));
    if (g >= 0) used.add(g);
  }
  return used.size;
}

function figures(matched: number, predicted: number, gold: number): Figures {
  const precision = predicted === 0 ? 0 : matched / predicted;
  const recall = gold === 0 ? 0 : matched / gold;
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { matched, precision, recall, f1 };
}
