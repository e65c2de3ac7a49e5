import { tripleLimits, textProblem } from './validation.js';

/** Confidence given to an extracted fact when the skill does not say how sure it is. */
export const DEFAULT_EXTRACTED_CONFIDENCE = 0.5;

export interface ExtractedTriple {
  subject: string;
  verb: string;
  object: string;
  confidence: number;
}

export interface Extraction {
  triples: ExtractedTriple[];
  /** Items of the skill's output that could not be stored, and why. */
  skipped: { index: number; problem: string }[];
}

const pick = (o: Record<string, unknown>, names: readonly string[]): unknown => {
  for (const n of names) if (o[n] !== undefined) return o[n];
  return undefined;
};

/**
 * The one place that knows the shape of the `triples` task's output:
 * `{ "task": "triples", "triples": [ { "subject", "verb", "object", "confidence" } ] }`.
 * A few likely spellings are accepted (predicate/relation for verb, score for confidence, a bare
 * array) so a small change on the skill's side does not break memory. Items that cannot be
 * stored are skipped and reported, not fatal. Returns undefined when the output has no list of
 * triples at all.
 */
export function triplesFromSkillOutput(output: unknown): Extraction | undefined {
  let list: unknown = output;
  if (typeof output === 'string') {
    try {
      list = JSON.parse(output);
    } catch {
      return undefined;
    }
  }
  if (list && typeof list === 'object' && !Array.isArray(list)) {
    list = pick(list as Record<string, unknown>, ['triples', 'facts', 'relations']);
  }
  if (!Array.isArray(list)) return undefined;
  const result: Extraction = { triples: [], skipped: [] };
  list.forEach((item: unknown, index) => {
    if (!item || typeof item !== 'object') {
      result.skipped.push({ index, problem: 'not an object' });
      return;
    }
    const o = item as Record<string, unknown>;
    const fields = {
      subject: pick(o, ['subject', 'subj', 's']),
      verb: pick(o, ['verb', 'predicate', 'relation', 'pred', 'p', 'v']),
      object: pick(o, ['object', 'obj', 'o']),
    };
    for (const [name, value] of Object.entries(fields) as [keyof typeof fields, unknown][]) {
      const problem = typeof value === 'string' ? textProblem(value, tripleLimits[name]) : 'missing';
      if (problem) {
        result.skipped.push({ index, problem: `${name}: ${problem}` });
        return;
      }
    }
    const c = pick(o, ['confidence', 'score', 'probability']);
    if (c !== undefined && (typeof c !== 'number' || !(c >= 0 && c <= 1))) {
      result.skipped.push({ index, problem: 'confidence: must be a number between 0 and 1' });
      return;
    }
    result.triples.push({
      subject: fields.subject as string,
      verb: fields.verb as string,
      object: fields.object as string,
      confidence: c ?? DEFAULT_EXTRACTED_CONFIDENCE,
    });
  });
  return result;
}
