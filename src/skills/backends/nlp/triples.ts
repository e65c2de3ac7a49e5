import {
  type Chunk,
  chunk,
  contentWords,
  type NounPhrase,
  prepare,
  prepositionOf,
  textOf,
  type Tok,
  type TripleToken,
  type VerbGroup,
} from './triples-chunks.js';

export type { TripleToken } from './triples-chunks.js';

/** One subject–relation–object fact read from a sentence. */
export interface Triple {
  subject: string;
  /** Lemmas: "live in", "not like", "be born in", "be capital of". */
  relation: string;
  object: string;
  /** In (0, 1]: how cleanly the sentence matched a pattern; not a calibrated probability. */
  confidence: number;
  /** Index of the sentence the fact was read from. */
  sentence: number;
}

/**
 * How much each doubt costs. A plain "subject verb object" match keeps {@link BASE}; every step
 * that needed a guess (a repaired tag, an inherited subject, an attachment) lowers it.
 */
const BASE = 0.9;
const COST = {
  repairedTag: 0.25,
  inheritedSubject: 0.1,
  parenthesis: 0.15,
  relativeClause: 0.1,
  resolvedPronoun: 0.2,
  extraPrepositional: 0.15,
  ditransitive: 0.15,
  adjectiveObject: 0.1,
  objectGap: 0.25,
  apposition: 0.2,
  longSentence: 0.1,
} as const;
const LONG_SENTENCE = 25;
const THIRD_PERSON = new Set(['he', 'she', 'it', 'they']);

interface Subject {
  np: NounPhrase;
  cost: number;
}

interface Draft {
  subject: Subject;
  relation: string[];
  object: NounPhrase;
  cost: number;
}

/**
 * Reads subject/verb/object facts from tagged sentences (one token array per sentence).
 * Handles copulas ("X is a Y", "X is the capital of Y"), prepositional verbs ("lives in"),
 * passives, negation, modals, coordinated subjects, verbs and objects, appositions ("my sister
 * Maria"), "who" clauses, and a third-person pronoun whose antecedent is an earlier sentence's
 * subject. Pure: the same tokens always give the same facts.
 */
export function extractTriples(sentences: readonly (readonly TripleToken[])[]): Triple[] {
  const out = new Map<string, Triple>();
  let antecedent: NounPhrase | undefined;
  sentences.forEach((tokens, index) => {
    const chunks = chunk(prepare(tokens));
    const sentenceCost = tokens.length > LONG_SENTENCE ? COST.longSentence : 0;
    let firstSubject: NounPhrase | undefined;
    for (const d of readSentence(chunks)) {
      let subject = d.subject.np;
      let cost = d.subject.cost + d.cost + sentenceCost;
      const pronoun = subject.pronoun ? subject.name[0]!.l : undefined;
      if (pronoun && THIRD_PERSON.has(pronoun) && antecedent) {
        subject = antecedent;
        cost += COST.resolvedPronoun;
      }
      if (!subject.pronoun) firstSubject ??= subject;
      add(out, {
        subject: textOf(subject.name),
        relation: d.relation.join(' '),
        object: textOf(d.object.name),
        confidence: Math.max(0.05, Math.round((BASE - cost) * 100) / 100),
        sentence: index,
      });
      for (const np of [subject, d.object]) {
        if (np.alias) {
          add(out, {
            subject: textOf(np.name),
            relation: 'be',
            object: textOf(np.alias),
            confidence: Math.round((BASE - COST.apposition - sentenceCost) * 100) / 100,
            sentence: index,
          });
        }
      }
    }
    if (firstSubject) antecedent = firstSubject;
  });
  return [...out.values()];
}

/** Keeps one copy of a fact, the most confident. */
function add(out: Map<string, Triple>, t: Triple): void {
  const key = `${t.subject.toLowerCase()}|${t.relation}|${t.object.toLowerCase()}`;
  const seen = out.get(key);
  if (!seen || seen.confidence < t.confidence) out.set(key, t);
}

function isNp(c: Chunk | undefined): c is NounPhrase {
  return c?.kind === 'np';
}

function isWord(c: Chunk | undefined, kind: string, lemma?: string): boolean {
  return c !== undefined && c.kind === kind && (lemma === undefined || c.toks[0]!.l === lemma);
}

/** Every fact of one sentence, verb group by verb group. */
function readSentence(chunks: readonly Chunk[]): Draft[] {
  const drafts: Draft[] = [];
  const subjects = new Map<number, Subject[]>();
  chunks.forEach((c, k) => {
    if (c.kind !== 'vg') return;
    const found = findSubjects(chunks, k, subjects);
    if (found.subjects.length === 0) return;
    subjects.set(k, found.subjects);
    if (found.apposition) {
      const np = found.subjects[0]!.np;
      drafts.push({ subject: { np, cost: 0 }, relation: ['be'], object: found.apposition, cost: COST.apposition });
    }
    const objects = readObjects(chunks, k, reducedPassive(chunks, k, c));
    if (objects.length === 0 && found.gap) {
      objects.push({ relation: c.words, object: found.gap, cost: COST.objectGap });
    }
    const verbCost = c.repaired ? COST.repairedTag : 0;
    for (const subject of found.subjects)
      for (const o of objects)
        drafts.push({ subject, relation: o.relation, object: o.object, cost: o.cost + verbCost });
  });
  return drafts;
}

/**
 * "a cat named Felix": a lone past participle right after the object of another verb is a
 * passive ("be named"), not that object's own action.
 */
function reducedPassive(chunks: readonly Chunk[], k: number, vg: VerbGroup): VerbGroup {
  const before = chunks[k - 2];
  const only = vg.toks.length === 1 ? vg.toks[0]! : undefined;
  if (!only || only.p !== 'VERB' || !/ed$/.test(only.text) || !(before?.kind === 'vg' || isWord(before, 'adp'))) {
    return vg;
  }
  return { ...vg, words: ['be', only.text.toLowerCase()], repaired: true };
}

/**
 * The subject(s) of the verb group at `k`, looking left: a noun phrase (with its coordinated
 * siblings), the antecedent of "who", the subject of a verb this one is coordinated with, or a
 * noun phrase before a parenthesis. `gap` is the noun a "that" clause's verb takes as object.
 */
function findSubjects(
  chunks: readonly Chunk[],
  k: number,
  earlier: Map<number, Subject[]>,
): { subjects: Subject[]; gap?: NounPhrase; apposition?: NounPhrase } {
  const left = chunks[k - 1];
  if (isNp(left) && !left.temporal && !left.adjectival) {
    const subjects = coordinatedLeft(chunks, k - 1).map((np) => ({ np, cost: 0 }));
    const rel = chunks[k - 2];
    const host = chunks[k - 3];
    // "the book that I bought": the clause's object is the noun before "that".
    const gap = isWord(rel, 'rel') && isNp(host) ? host : undefined;
    return { subjects, gap };
  }
  if (isWord(left, 'rel')) {
    const host = isWord(chunks[k - 2], 'comma') ? chunks[k - 3] : chunks[k - 2];
    if (isNp(host)) return { subjects: [{ np: host, cost: COST.relativeClause }] };
  }
  if (isWord(left, 'cc')) {
    // "Maria lives in Madrid and loves her job": the nearest earlier verb's subjects.
    for (let j = k - 2; j >= 0; j--) {
      const subjects = earlier.get(j);
      if (subjects) return { subjects: subjects.map((s) => ({ np: s.np, cost: s.cost + COST.inheritedSubject })) };
      if (chunks[j]!.kind === 'vg') break;
    }
  }
  if (isWord(left, 'comma')) {
    // "Laura, who lives in Rome, teaches": skip back over the parenthesis to the noun before it.
    for (let j = k - 2; j > 0; j--) {
      if (!isWord(chunks[j], 'comma')) continue;
      const host = chunks[j - 1];
      if (isNp(host) && !host.pronoun) {
        return { subjects: [{ np: host, cost: COST.parenthesis }], apposition: apposition(chunks.slice(j + 1, k - 1)) };
      }
      break;
    }
  }
  if (left?.kind === 'vg') {
    // "The book that I bought yesterday is great": the main verb after a "that" clause.
    for (let j = k - 1; j > 0; j--) {
      if (chunks[j]!.kind === 'vg') {
        const rel = chunks[j - 2];
        const host = chunks[j - 3];
        if (isWord(rel, 'rel') && isNp(host)) return { subjects: [{ np: host, cost: COST.relativeClause }] };
        break;
      }
    }
  }
  return { subjects: [] };
}

/** "Bob, a doctor from Boston, married": the parenthesis, when it is a noun phrase, describes the subject. */
function apposition(inner: readonly Chunk[]): NounPhrase | undefined {
  const first = inner[0];
  if (!isNp(first) || first.pronoun || first.adjectival) return undefined;
  for (let i = 1; i < inner.length; i += 2) if (!isWord(inner[i], 'adp') || !isNp(inner[i + 1])) return undefined;
  const toks = inner.flatMap((c) => c.toks);
  return { ...first, toks, name: toks, alias: undefined };
}

/** "Alice and Bob", "Rome, Florence and Venice" ending at `end`, read leftwards; objects of an earlier verb stay out. */
function coordinatedLeft(chunks: readonly Chunk[], end: number): NounPhrase[] {
  const nps: NounPhrase[] = [chunks[end] as NounPhrase];
  let j = end - 1;
  while (j >= 1 && (isWord(chunks[j], 'cc') || isWord(chunks[j], 'comma'))) {
    const np = chunks[j - 1];
    const before = chunks[j - 2];
    if (!isNp(np) || np.temporal || before?.kind === 'vg' || isWord(before, 'adp')) break;
    nps.unshift(np);
    j -= 2;
  }
  return nps;
}

/** "tea, coffee and milk" starting at `start`; stops before "and Tom sings" (a new clause). */
function coordinatedRight(chunks: readonly Chunk[], start: number): { nps: NounPhrase[]; next: number } {
  const head = joinOf(chunks, start);
  const nps: NounPhrase[] = [head.np];
  let j = head.next;
  while (isWord(chunks[j], 'cc') || isWord(chunks[j], 'comma')) {
    let n = j + 1;
    if (isWord(chunks[j], 'comma') && isWord(chunks[n], 'cc')) n++;
    const np = chunks[n];
    if (!isNp(np) || np.temporal || chunks[n + 1]?.kind === 'vg') break;
    const joined = joinOf(chunks, n);
    nps.push(joined.np);
    j = joined.next;
  }
  return { nps, next: j };
}

interface ObjectDraft {
  relation: string[];
  object: NounPhrase;
  cost: number;
}

/** Objects of the verb group at `k`: a direct object, prepositional objects, a copula's complement. */
function readObjects(chunks: readonly Chunk[], k: number, vg: VerbGroup): ObjectDraft[] {
  const found: ObjectDraft[] = [];
  const verb = vg.words;
  let m = k + 1;
  const first = chunks[m];
  if (isNp(first) && !first.temporal) {
    const afterAdp = chunks[m + 1];
    const afterNp = chunks[m + 2];
    if (vg.copula && isWord(afterAdp, 'adp') && isNp(afterNp)) {
      // "is the capital of France", "is married to David", "is an engineer at Google".
      const prep = prepositionOf(afterAdp!.toks[0]!);
      found.push({
        relation: [...verb, ...contentWords(first.toks), prep],
        object: afterNp,
        cost: first.adjectival ? 0 : 0.05,
      });
      if (prep !== 'of' && !first.adjectival) found.push({ relation: verb, object: first, cost: 0 });
      m += 3;
    } else if (!vg.copula && isNp(afterAdp) && !afterAdp.temporal) {
      // "gave Tom a book": the second noun is the thing given.
      found.push({ relation: verb, object: afterAdp, cost: COST.ditransitive });
      found.push({ relation: [...verb, 'to'], object: first, cost: COST.ditransitive });
      m += 2;
    } else {
      const { nps, next } = coordinatedRight(chunks, m);
      const cost = first.adjectival && !vg.copula ? COST.adjectiveObject : 0;
      for (const np of nps) found.push({ relation: verb, object: np, cost });
      m = next;
    }
  }
  // Each following "preposition + noun phrase" is its own fact with the verb ("live in", "move to").
  let extra = found.length > 0;
  while (m < chunks.length) {
    const c = chunks[m];
    // "since 2019" is tagged as a conjunction; "before it reaches" starts a clause, not an object.
    const prepositional = isWord(c, 'adp') || isWord(c, 'sconj');
    if (prepositional && isNp(chunks[m + 1]) && chunks[m + 2]?.kind !== 'vg') {
      const { nps, next } = coordinatedRight(chunks, m + 1);
      for (const np of nps) {
        found.push({
          relation: [...verb, prepositionOf(c!.toks[0]!)],
          object: np,
          cost: extra ? COST.extraPrepositional : 0,
        });
      }
      extra = true;
      m = next;
    } else if (isNp(c) && c.temporal) m++;
    else if (c?.kind === 'other' && c.toks[0]!.p === 'ADV') m++;
    else break;
  }
  return found;
}

/** "a cup" + "of" + "tea" → "a cup of tea": an "of" phrase belongs to the noun before it. */
function joinOf(chunks: readonly Chunk[], m: number): { np: NounPhrase; next: number } {
  const np = chunks[m] as NounPhrase;
  const of = chunks[m + 1];
  const tail = chunks[m + 2];
  if (!isWord(of, 'adp', 'of') || !isNp(tail)) return { np, next: m + 1 };
  const toks: Tok[] = [...np.toks, ...of!.toks, ...tail.toks];
  return { np: { ...np, toks, name: toks, alias: undefined, adjectival: false }, next: m + 3 };
}
