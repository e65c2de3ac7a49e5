import type winkNLPFactory from 'wink-nlp';
import type { ItemSentence, ItemToken } from 'wink-nlp';
import type { TripleToken } from './triples-chunks.js';

/** A loaded wink-nlp instance. */
export type WinkNlp = ReturnType<typeof winkNLPFactory>;

/** The tokens of `text`, one array per sentence, with what the triple extractor reads from wink-nlp. */
export function sentenceTokens(nlp: WinkNlp, text: string): TripleToken[][] {
  const its = nlp.its;
  const sentences: TripleToken[][] = [];
  nlp
    .readDoc(text)
    .sentences()
    .each((sentence: ItemSentence) => {
      const tokens: TripleToken[] = [];
      sentence.tokens().each((t: ItemToken) => {
        tokens.push({
          text: t.out(),
          pos: t.out(its.pos),
          // wink-nlp's declarations type its.lemma more narrowly than out() accepts.
          lemma: t.out(its.lemma as unknown as typeof its.pos),
          space: t.out(its.precedingSpaces).length > 0,
        });
      });
      sentences.push(tokens);
    });
  return sentences;
}
