/**
 * Accuracy of the nlp skill's `triples` task on the hand-labelled sample
 * (test/fixtures/triples-sample.json): prints the figures and writes them into the
 * `triples` section of docs/BENCHMARKS.md.  Run: npm run eval
 */
import { machine, writeSection } from '../bench/lib/doc-section.js';
import { type Evaluation, evaluateTriples } from './triples-eval.js';

const pct = (v: number) => `${(v * 100).toFixed(0)} %`;

function table(e: Evaluation): string {
  const rows = e.splits.flatMap(({ split, byThreshold }) =>
    byThreshold.map(({ minConfidence, scores: s }) =>
      [
        split,
        `${s.items} / ${s.gold}`,
        minConfidence === 0 ? 'any' : `≥ ${minConfidence}`,
        s.predicted,
        pct(s.exact.precision),
        pct(s.exact.recall),
        pct(s.exact.f1),
        pct(s.partial.precision),
        pct(s.partial.recall),
        pct(s.partial.f1),
      ].join(' | '),
    ),
  );
  return [
    '| items | texts / facts | confidence | predicted | exact P | exact R | exact F1 | partial P | partial R | partial F1 |',
    '|---|--:|---|--:|--:|--:|--:|--:|--:|--:|',
    ...rows.map((r) => `| ${r} |`),
  ].join('\n');
}

function section(e: Evaluation): string {
  const at = (split: string) => e.splits.find((s) => s.split === split)!.byThreshold[0]!.scores;
  const all = at('all');
  const held = at('held-out');
  const dev = at('dev');
  return `## nlp \`triples\` task: accuracy on a hand-labelled sample

Measured ${new Date().toISOString()} with \`npm run eval\` on ${machine()}.

The sample is [test/fixtures/triples-sample.json](../test/fixtures/triples-sample.json): ${all.items} short English
texts with ${all.gold} facts labelled by hand (labelling conventions are in the file's \`about\`). The extractor
(src/skills/backends/nlp/triples.ts) reads wink-nlp's POS tags and lemmas; there is no dependency parser,
so facts come from patterns over noun phrases and verb groups.

**Quote the held-out rows.** The ${dev.items} \`dev\` texts were in view while the rules were written, so their
figures are optimistic by construction; the ${held.items} \`held-out\` texts (${held.gold} facts) were labelled and
committed before the extractor was first run on them and were not used to tune it.

- **Exact**: subject, relation and object each equal a labelled alternative after normalisation
  (wink-nlp lemmas, lower case, articles and punctuation dropped).
- **Partial**: each of the three shares at least one content lemma with a labelled alternative
  (the relation may share just "be").
- Each labelled fact is matched at most once. The rows with a confidence floor keep only the
  predictions at or above it: precision should rise as the floor does if the confidence means something.

${table(e)}

The sample was written to cover the patterns the task claims (copulas, prepositional verbs, passives,
negation, coordination, appositions, "who" clauses, a pronoun across sentences) plus a few it handles
poorly (prepositional attachment, subordinate clauses); it is small, so one fact moves a figure by
about ${pct(1 / held.gold)} on the held-out split. Read the figures as a regression check, not as a claim about English at large.`;
}

const e = evaluateTriples();
process.stdout.write(`${table(e)}\n`);
if (process.argv.includes('--misses')) {
  e.sample.forEach((item, i) => {
    process.stdout.write(`\n# ${item.text}\n  gold: ${item.triples.map((t) => `(${t.join(' ; ')})`).join(' ')}\n`);
    for (const t of e.predictions[i]!)
      process.stdout.write(`  got:  (${t.subject} ; ${t.relation} ; ${t.object}) ${t.confidence}\n`);
  });
}
writeSection('triples', section(e));
process.stdout.write('wrote the triples section of docs/BENCHMARKS.md\n');
