import type { TripleInput } from './entity-store.js';

/**
 * Independent evidence: the fact is false only if every assertion is wrong, 1 − (1 − a)(1 − b).
 * Written as a + b(1 − a), the same value, because in floating point that form is exact for the
 * two cases that must not drift: b = 0 (no new evidence) and a = 1 (already certain).
 */
export function combineConfidence(a: number, b: number): number {
  return a + b * (1 - a);
}

/** One distinct triple of a request, with its repeats folded in. */
export interface CombinedTriple extends TripleInput {
  /** Identity of the triple: equal exactly when subject, verb and object are equal. */
  key: string;
  /** How many items of the request it stands for. */
  assertions: number;
}

export function tripleKey(t: Pick<TripleInput, 'subject' | 'verb' | 'object'>): string {
  return JSON.stringify([t.subject, t.verb, t.object]);
}

/**
 * Folds repeats of a triple within one request into one item, as the database folds a repeat
 * into the stored row: `INSERT … ON CONFLICT DO UPDATE` cannot touch the same row twice in one
 * statement. The last repeat's source wins, as it would over separate requests.
 * Keeps first-appearance order.
 */
export function combineDuplicates(items: readonly TripleInput[]): CombinedTriple[] {
  const byKey = new Map<string, CombinedTriple>();
  for (const item of items) {
    const key = tripleKey(item);
    const seen = byKey.get(key);
    if (seen) {
      seen.confidence = combineConfidence(seen.confidence, item.confidence);
      seen.source = item.source;
      seen.assertions += 1;
    } else {
      byKey.set(key, { ...item, key, assertions: 1 });
    }
  }
  return [...byKey.values()];
}
