/**
 * The shallow parse under the triples task: wink-nlp gives universal POS tags and lemmas but no
 * dependency parse, so a sentence is cut into noun phrases, verb groups and the small words
 * between them, and facts are read off that sequence (triples.ts). Pure functions, no model.
 */

/** One token as the extractor sees it: wink-nlp's text, universal POS tag and lemma. */
export interface TripleToken {
  text: string;
  pos: string;
  lemma: string;
  /** Whitespace precedes the token in the original text (to rebuild phrases as written). */
  space: boolean;
}

/** A token with the (possibly repaired) tag and lower-case lemma the parser works with. */
export interface Tok extends TripleToken {
  p: string;
  l: string;
  /** The tagger's POS was overruled by a repair rule: the fact built on it is less certain. */
  repaired: boolean;
}

export interface NounPhrase {
  kind: 'np';
  toks: Tok[];
  /** The part that names the thing: "Maria" in "my sister Maria". */
  name: Tok[];
  /** A description placed before a proper name: "my sister" in "my sister Maria". */
  alias?: Tok[];
  pronoun: boolean;
  /** A time phrase ("last year", "every day"): not an object on its own. */
  temporal: boolean;
  /** No noun in it ("very tall", "married"): an adjective phrase. */
  adjectival: boolean;
}

export interface VerbGroup {
  kind: 'vg';
  toks: Tok[];
  /** The relation the group expresses, as lemmas: "not like", "be born", "want to learn". */
  words: string[];
  /** A form of "be" with no other verb: "X is Y". */
  copula: boolean;
  repaired: boolean;
}

export interface Word {
  kind: 'adp' | 'cc' | 'comma' | 'rel' | 'sconj' | 'other';
  toks: Tok[];
}

export type Chunk = NounPhrase | VerbGroup | Word;

const SUBJECT_PRONOUNS = new Set(['i', 'you', 'he', 'she', 'it', 'we', 'they', 'me', 'him', 'us', 'them']);
const POSSESSIVES = new Set(['my', 'your', 'his', 'her', 'its', 'our', 'their']);
const RELATIVES = new Set(['who', 'which', 'that', 'whom']);
const MODALS = new Set(['can', 'could', 'will', 'would', 'shall', 'should', 'may', 'might', 'must']);
const NEGATIONS = new Set(['not', "n't", 'never']);
const TIME_WORDS = new Set([
  'year',
  'month',
  'week',
  'day',
  'time',
  'season',
  'morning',
  'afternoon',
  'evening',
  'night',
  'weekend',
  'today',
  'tomorrow',
  'yesterday',
  'monday',
  'tuesday',
  'wednesday',
  'thursday',
  'friday',
  'saturday',
  'sunday',
]);
const TIME_DETERMINERS = new Set(['every', 'last', 'next', 'this', 'each']);
const NOMINAL = new Set(['NOUN', 'PROPN', 'NUM', 'PRON']);

/** Lower-case lemmas, with the tagger's errors that break facts most often repaired. */
export function prepare(tokens: readonly TripleToken[]): Tok[] {
  const toks: Tok[] = tokens.map((t) => ({ ...t, p: t.pos, l: t.lemma.toLowerCase(), repaired: false }));
  let verbSeen = false;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.p === 'VERB' || t.p === 'AUX') verbSeen = true;
    if (t.p === 'CCONJ' || (t.p === 'PRON' && RELATIVES.has(t.l))) verbSeen = false;
    if (verbSeen) continue;
    const prev = toks[i - 1];
    const next = toks[i + 1];
    const word = t.text.toLowerCase();
    // "Maria lives in Madrid": the tagger reads a third-person verb right after a name as a plural noun.
    if (
      t.p === 'NOUN' &&
      /^[a-z]{3,}s$/.test(word) &&
      !word.endsWith('ss') &&
      prev &&
      (prev.p === 'PROPN' ||
        prev.p === 'NOUN' ||
        (prev.p === 'PRON' && (['he', 'she', 'it'].includes(prev.l) || RELATIVES.has(prev.l)))) &&
      next &&
      ['ADP', 'DET', 'PRON', 'PROPN', 'NUM'].includes(next.p)
    ) {
      Object.assign(t, { p: 'VERB', l: verbStemOfS(word), repaired: true });
      verbSeen = true;
    }
    // "Bob, a doctor, married Alice": a past tense with no verb before it, read as an adjective.
    if (
      t.p === 'ADJ' &&
      /^[a-z]{3,}ed$/.test(word) &&
      prev &&
      (prev.p === 'PROPN' || prev.text === ',' || (prev.p === 'PRON' && SUBJECT_PRONOUNS.has(prev.l))) &&
      next &&
      ['PROPN', 'DET', 'PRON'].includes(next.p)
    ) {
      Object.assign(t, { p: 'VERB', l: verbStemOfEd(word), repaired: true });
      verbSeen = true;
    }
  }
  return toks;
}

/** "lives" → "live", "carries" → "carry", "watches" → "watch". */
function verbStemOfS(word: string): string {
  if (word.endsWith('ies')) return `${word.slice(0, -3)}y`;
  if (/(ch|sh|ss|x|z|o)es$/.test(word)) return word.slice(0, -2);
  return word.slice(0, -1);
}

/** "married" → "marry", "opened" → "open", "stopped" → "stop". */
function verbStemOfEd(word: string): string {
  if (word.endsWith('ied')) return `${word.slice(0, -3)}y`;
  const stem = word.slice(0, -2);
  if (/([bdgmnprt])\1$/.test(stem)) return stem.slice(0, -1);
  return stem;
}

/** Cuts a sentence into noun phrases, verb groups and the words between them. */
export function chunk(toks: readonly Tok[]): Chunk[] {
  const chunks: Chunk[] = [];
  let i = 0;
  while (i < toks.length) {
    const np = readNounPhrase(toks, i);
    if (np) {
      chunks.push(np.chunk);
      i = np.next;
      continue;
    }
    const vg = readVerbGroup(toks, i);
    if (vg) {
      chunks.push(vg.chunk);
      i = vg.next;
      continue;
    }
    const t = toks[i]!;
    chunks.push({ kind: wordKind(t), toks: [t] });
    i++;
  }
  return chunks;
}

function wordKind(t: Tok): Word['kind'] {
  if (t.p === 'ADP') return 'adp';
  if (t.p === 'CCONJ') return 'cc';
  if (t.p === 'PUNCT' && (t.text === ',' || t.text === ';')) return 'comma';
  if (t.p === 'PRON' && RELATIVES.has(t.l)) return 'rel';
  if (t.p === 'SCONJ') return 'sconj';
  return 'other';
}

function readNounPhrase(toks: readonly Tok[], start: number): { chunk: NounPhrase; next: number } | undefined {
  const first = toks[start]!;
  const after = toks[start + 1];
  const modifierFollows = after !== undefined && ['ADJ', 'NOUN', 'PROPN', 'NUM', 'ADV'].includes(after.p);
  if (first.p === 'PRON' && SUBJECT_PRONOUNS.has(first.l) && !(first.l === 'her' && modifierFollows)) {
    return { chunk: nounPhrase([first]), next: start + 1 };
  }
  const taken: Tok[] = [];
  let i = start;
  for (; i < toks.length; i++) {
    const t = toks[i]!;
    const next = toks[i + 1];
    const hasNoun = taken.some((x) => NOMINAL.has(x.p));
    // "Berlin last year": a time phrase starts after the noun, it does not extend it.
    if (hasNoun && TIME_DETERMINERS.has(t.l)) break;
    if (t.p === 'DET' && !hasNoun && !RELATIVES.has(t.l)) taken.push(t);
    else if (t.p === 'PRON' && POSSESSIVES.has(t.l) && taken.length === 0) taken.push(t);
    else if (t.p === 'ADV' && next?.p === 'ADJ' && !hasNoun) taken.push(t);
    else if (['ADJ', 'NOUN', 'PROPN', 'NUM'].includes(t.p)) taken.push(t);
    else if (t.p === 'SYM' && next?.p === 'NUM') taken.push(t);
    else if (t.p === 'PART' && t.l === "'s" && hasNoun && next && ['ADJ', 'NOUN', 'PROPN'].includes(next.p)) {
      taken.push(t);
    } else break;
  }
  // A lone determiner or possessive is not a phrase.
  if (taken.length === 0 || !taken.some((t) => ['ADJ', 'NOUN', 'PROPN', 'NUM'].includes(t.p))) return undefined;
  return { chunk: nounPhrase(taken), next: i };
}

function nounPhrase(toks: Tok[]): NounPhrase {
  const nouns = toks.filter((t) => NOMINAL.has(t.p));
  const head = nouns[nouns.length - 1];
  const first = toks[0]!;
  const temporal =
    (head !== undefined && TIME_WORDS.has(head.l)) || (TIME_DETERMINERS.has(first.l) && head !== undefined);
  // "my sister Maria": a description, then a proper name that ends the phrase.
  let split = toks.length;
  while (split > 0 && toks[split - 1]!.p === 'PROPN') split--;
  const described =
    split > 0 &&
    split < toks.length &&
    toks[split - 1]!.p === 'NOUN' &&
    (first.p === 'DET' || (first.p === 'PRON' && POSSESSIVES.has(first.l)));
  return {
    kind: 'np',
    toks,
    name: described ? toks.slice(split) : toks,
    ...(described ? { alias: toks.slice(0, split) } : {}),
    pronoun: toks.length === 1 && first.p === 'PRON',
    temporal,
    adjectival: head === undefined,
  };
}

function readVerbGroup(toks: readonly Tok[], start: number): { chunk: VerbGroup; next: number } | undefined {
  const taken: Tok[] = [];
  let i = start;
  for (; i < toks.length; i++) {
    const t = toks[i]!;
    const next = toks[i + 1];
    if (t.p === 'AUX' || t.p === 'VERB') taken.push(t);
    else if (t.p === 'PART' && NEGATIONS.has(t.l)) taken.push(t);
    else if (t.p === 'ADV' && NEGATIONS.has(t.l)) taken.push(t);
    // "now works", "has always lived": an adverb before the verb belongs to the group, but not
    // one after it ("bought yesterday is great" holds two groups).
    else if (
      t.p === 'ADV' &&
      next &&
      (next.p === 'VERB' || next.p === 'AUX') &&
      (taken.length === 0 || taken[taken.length - 1]!.p === 'AUX')
    )
      taken.push(t);
    else if (t.p === 'PART' && t.l === 'to' && taken.some((x) => x.p === 'VERB') && next?.p === 'VERB') taken.push(t);
    else break;
  }
  if (!taken.some((t) => t.p === 'AUX' || t.p === 'VERB')) return undefined;
  return { chunk: verbGroup(taken), next: i };
}

function verbGroup(toks: Tok[]): VerbGroup {
  const negated = toks.some((t) => NEGATIONS.has(t.l));
  const verbs = toks.filter((t) => t.p === 'VERB');
  const auxes = toks.filter((t) => t.p === 'AUX');
  const words: string[] = [];
  const repaired = toks.some((t) => t.repaired);
  if (verbs.length === 0) {
    const modals = auxes.filter((t) => MODALS.has(t.l));
    const main = [...auxes].reverse().find((t) => !MODALS.has(t.l)) ?? auxes[auxes.length - 1]!;
    for (const m of modals) if (m !== main) words.push(m.l);
    if (negated) words.push('not');
    words.push(main.l);
    return { kind: 'vg', toks, words, copula: main.l === 'be', repaired };
  }
  const firstVerb = verbs[0]!;
  for (const t of auxes) if (MODALS.has(t.l) && toks.indexOf(t) < toks.indexOf(firstVerb)) words.push(t.l);
  if (negated) words.push('not');
  const before = toks.slice(0, toks.indexOf(firstVerb)).filter((t) => t.p === 'AUX');
  const passive = before.some((t) => t.l === 'be') && !firstVerb.text.toLowerCase().endsWith('ing');
  // Passive keeps the participle as written: "be born", not the lemma "be bear".
  if (passive) words.push('be', firstVerb.text.toLowerCase());
  else words.push(firstVerb.l);
  for (const v of verbs.slice(1)) words.push('to', v.l);
  return { kind: 'vg', toks, words, copula: false, repaired };
}

/** The phrase as written: "Maria's brother", "$20 million". */
export function textOf(toks: readonly Tok[]): string {
  return toks.map((t, i) => (i > 0 && t.space ? ' ' : '') + t.text).join('');
}

/** A preposition as written: wink-nlp's lemma of "through" is "thru". */
export function prepositionOf(t: Tok): string {
  return t.text.toLowerCase();
}

/** Lemmas without determiners: the content of a phrase used inside a relation ("be capital of"). */
export function contentWords(toks: readonly Tok[]): string[] {
  return toks.filter((t) => t.p !== 'DET' && !(t.p === 'PRON' && POSSESSIVES.has(t.l))).map((t) => t.l);
}
