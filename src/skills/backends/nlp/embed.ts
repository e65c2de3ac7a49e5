import type { ItemToken } from 'wink-nlp';
import type { WinkNlp } from './wink-tokens.js';
import { embedWords, loadWordVectors, type WordVectors } from './word-vectors.js';

/** The nlp skill's `embed` task: a text's tokens (wink-nlp's tokenizer) embedded with the word vectors. */
export interface Embedder {
  /** Settles once the word vectors are loaded. */
  ready: Promise<void>;
  /** Only once `ready` has resolved. */
  embed(text: string): { embedding: number[]; dimensions: number; tokens: number };
}

/** Token types that carry no meaning of their own in an embedding. */
const SKIPPED = new Set(['punctuation', 'symbol', 'tabCRLF', 'emoticon', 'emoji']);

export function createEmbedder(nlp: WinkNlp): Embedder {
  let wv: WordVectors | undefined;
  const ready = loadWordVectors().then((loaded) => {
    wv = loaded;
  });
  return {
    ready,
    embed(text) {
      if (!wv) throw new Error('nlp: the word vectors are not loaded');
      const its = nlp.its;
      const words: string[] = [];
      let tokens = 0;
      nlp
        .readDoc(text)
        .tokens()
        .each((t: ItemToken) => {
          tokens++;
          if (!SKIPPED.has(t.out(its.type))) words.push(t.out(its.normal));
        });
      const vector = embedWords(words, wv);
      // Six significant digits are more than float32 word vectors hold, and halve the JSON.
      return { embedding: Array.from(vector, (v) => Number(v.toPrecision(6))), dimensions: vector.length, tokens };
    },
  };
}
