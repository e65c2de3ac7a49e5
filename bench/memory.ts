/**
 * Entity memory benchmark: 1,000,000 triples across 100 tenants in Postgres; recall by subject
 * (p50/p99), inserts per second through the store (single-row and bulk, side by side), and
 * EXPLAIN (ANALYZE, BUFFERS) of the recall statements. Writes its section of docs/BENCHMARKS.md.
 *
 *   npm run bench:memory [-- --triples 1000000 --tenants 100 --keep]
 */
import { benchmarksPath, writeSection } from './lib/doc-section.js';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/index.js';
import { migrate } from '../src/db/migrate.js';
import { createPgPool } from '../src/lib/postgres.js';
import type { TripleInput } from '../src/memory/entity-store.js';
import { PgEntityStore, recallStatement } from '../src/memory/pg-entity-store.js';

const { values: args } = parseArgs({
  options: {
    triples: { type: 'string', default: '1000000' },
    tenants: { type: 'string', default: '100' },
    queries: { type: 'string', default: '20000' },
    keep: { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
  },
});
const TOTAL = Number(args.triples);
const TENANTS = Number(args.tenants);
const PER_TENANT = Math.floor(TOTAL / TENANTS);
/** Facts per subject: recall by subject returns this many rows. */
const PER_SUBJECT = 10;
const SUBJECTS = Math.max(1, Math.floor(PER_TENANT / PER_SUBJECT));
const QUERIES = Number(args.queries);
const SCHEMA = 'bench_memory';

const config = loadConfig();
const pool = createPgPool(config.DATABASE_URL, { name: 'bench-memory', schema: SCHEMA, max: 9 });
const store = new PgEntityStore(pool);
const log = (line: string) => console.log(line);
const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const fmt = (n: number, digits = 2) => n.toLocaleString('en-US', { maximumFractionDigits: digits });

async function load(): Promise<{ seconds: number; tenants: string[] }> {
  await pool.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await migrate(pool, SCHEMA);
  const client = await pool.connect();
  try {
    // The load runs longer than the store's statement timeout, and builds indexes.
    await client.query("SET statement_timeout = 0; SET maintenance_work_mem = '256MB'");
    const { rows: tenantRows } = await client.query<{ id: string }>(
      `INSERT INTO tenants (name) SELECT 'bench-' || g FROM generate_series(1, $1::int) g RETURNING id`,
      [TENANTS],
    );
    // Building the secondary indexes once after the load is far faster than maintaining them
    // row by row; they are recreated from their own catalogue definitions, i.e. migration 002's.
    const { rows: indexes } = await client.query<{ indexname: string; indexdef: string }>(
      `SELECT indexname, indexdef FROM pg_indexes
        WHERE schemaname = $1 AND tablename = 'triples' AND indexname <> 'triples_pkey'`,
      [SCHEMA],
    );
    for (const ix of indexes) await client.query(`DROP INDEX ${SCHEMA}.${ix.indexname}`);
    const start = process.hrtime.bigint();
    const chunk = 10;
    for (let t = 0; t < TENANTS; t += chunk) {
      // Fact g of a tenant: subject g % SUBJECTS, verb g / SUBJECTS, object g (unique by
      // construction); confidence uniform in [0, 1), update times spread over 30 days.
      await client.query(
        `INSERT INTO triples (tenant_id, subject, verb, object, confidence, source, created_at, updated_at)
         SELECT id, 'subject-' || (g % $1), 'verb-' || (g / $1), 'object-' || g, random(), 'bench',
                now() - interval '30 days' * r, now() - interval '30 days' * r
           FROM (SELECT t.id, g, random() AS r
                   FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM tenants) t,
                        generate_series(0, $2::int - 1) g
                  WHERE t.n > $3 AND t.n <= $4) x`,
        [SUBJECTS, PER_TENANT, t, t + chunk],
      );
      log(`  loaded tenants ${t + 1}–${Math.min(TENANTS, t + chunk)} (${fmt(ms(start) / 1000, 1)} s)`);
    }
    for (const ix of indexes) {
      const s = process.hrtime.bigint();
      await client.query(ix.indexdef);
      log(`  built ${ix.indexname} (${fmt(ms(s) / 1000, 1)} s)`);
    }
    await client.query('VACUUM ANALYZE triples');
    return { seconds: ms(start) / 1000, tenants: tenantRows.map((r) => r.id) };
  } finally {
    client.release();
  }
}

interface Latency {
  p50: number;
  p99: number;
  mean: number;
  perSecond: number;
}

/** Runs `op` `count` times over `concurrency` workers; latencies in ms. */
async function measure(count: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<Latency> {
  const latencies: number[] = [];
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const s = process.hrtime.bigint();
        await op(i);
        latencies.push(ms(s));
      }
    }),
  );
  const seconds = ms(start) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    mean: latencies.reduce((a, b) => a + b, 0) / latencies.length,
    perSecond: count / seconds,
  };
}

const randomSubject = () => `subject-${Math.floor(Math.random() * SUBJECTS)}`;

async function explain(text: string, values: unknown[]): Promise<string> {
  const { rows } = await pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${text}`, values);
  return rows.map((r) => r['QUERY PLAN']).join('\n');
}

async function main(): Promise<void> {
  const began = Date.now();
  const { rows: version } = await pool.query<{ server_version: string }>('SHOW server_version');
  log(`loading ${fmt(PER_TENANT * TENANTS)} triples across ${TENANTS} tenants into schema ${SCHEMA}…`);
  const loaded = await load();
  log(`loaded in ${fmt(loaded.seconds, 1)} s (indexes built after the load)`);
  const { rows: size } = await pool.query<{ table: string; indexes: string; rows: string }>(
    `SELECT pg_size_pretty(pg_table_size('triples')) AS table,
            pg_size_pretty(pg_indexes_size('triples')) AS indexes,
            (SELECT count(*) FROM triples)::text AS rows`,
  );
  const tenant = () => pick(loaded.tenants);

  log(`recall by subject: ${QUERIES} random queries…`);
  await measure(300, 1, () => store.recall(tenant(), { subject: randomSubject(), limit: 100 })); // warm-up
  const recall1 = await measure(QUERIES, 1, () => store.recall(tenant(), { subject: randomSubject(), limit: 100 }));
  const recall8 = await measure(QUERIES, 8, () => store.recall(tenant(), { subject: randomSubject(), limit: 100 }));

  // New facts (fresh objects), so every insert is an insert, not a combine.
  const fresh = (i: number, tag: string): TripleInput => ({
    subject: randomSubject(),
    verb: 'verb-new',
    object: `${tag}-${i}-${Math.random()}`,
    confidence: Math.random(),
    source: 'bench',
  });
  const SINGLES = 5_000;
  log(`single-row inserts: ${SINGLES} sequential, ${SINGLES * 2} over 8 clients…`);
  const single1 = await measure(SINGLES, 1, (i) => store.assert(tenant(), [fresh(i, 's1')]));
  const single8 = await measure(SINGLES * 2, 8, (i) => store.assert(tenant(), [fresh(i, 's8')]));
  const BATCH = 1_000;
  const BATCHES = 30;
  log(`bulk inserts: ${BATCHES} batches of ${BATCH}…`);
  const bulk = await measure(BATCHES, 1, (i) =>
    store.assert(
      tenant(),
      Array.from({ length: BATCH }, (_, j) => fresh(i * BATCH + j, 'bulk')),
    ),
  );
  const combine = await measure(SINGLES, 1, async () => {
    const s = randomSubject();
    // An existing fact (object g of subject s is g ≡ s mod SUBJECTS): a combine, not an insert.
    const g = Number(s.slice(8));
    await store.assert(tenant(), [
      { subject: s, verb: 'verb-0', object: `object-${g}`, confidence: 0.1, source: 'bench' },
    ]);
  });

  const planTenant = tenant();
  const planSubject = randomSubject();
  const bySubject = recallStatement(planTenant, { subject: planSubject, limit: 100 });
  const planSubjectText = await explain(bySubject.text, bySubject.values);
  const firstPage = await store.recall(planTenant, { limit: 100, minConfidence: 0.5 });
  const keyset = recallStatement(planTenant, { limit: 100, minConfidence: 0.5, after: firstPage.next });
  const planKeysetText = await explain(keyset.text, keyset.values);
  // A subject has few facts, so the planner may sort them after the index lookup; a tenant-wide
  // page must come straight off the ordering index, or deep pages would cost a sort each.
  for (const [name, plan, index, sortAllowed] of [
    ['recall by subject', planSubjectText, 'triples_tenant_subject_idx', true],
    ['keyset page', planKeysetText, 'triples_tenant_order_idx', false],
  ] as const) {
    if (!plan.includes(index) || plan.includes('Seq Scan') || (!sortAllowed && plan.includes('Sort Method'))) {
      throw new Error(`${name}: the plan does not use ${index} as expected:\n${plan}`);
    }
  }
  log(planSubjectText);

  const f = (l: Latency) => `${fmt(l.p50, 3)} ms | ${fmt(l.p99, 3)} ms | ${fmt(l.perSecond, 0)}`;
  const rowsPerSecond = (l: Latency, rows: number) => fmt(l.perSecond * rows, 0);
  const cpu = cpus();
  const section = `
## Entity memory (Postgres)

\`npm run bench:memory\` — ${new Date().toISOString().slice(0, 10)}, ${cpu.length} cores (${cpu[0]?.model ?? 'unknown CPU'}),
Node ${process.version}, PostgreSQL ${version[0]?.server_version} (the machine's, default settings, shared with other work).
Measured through \`PgEntityStore\` (the gateway's store: pg pool, parameterised statements), not HTTP.

Data: ${fmt(Number(size[0]?.rows))} triples across ${TENANTS} tenants (${fmt(PER_TENANT)} each: ${fmt(SUBJECTS)} subjects × ${PER_SUBJECT} facts),
table ${size[0]?.table}, indexes ${size[0]?.indexes}; loaded with one \`INSERT … SELECT generate_series\` per 10 tenants and
indexes built after the load in ${fmt(loaded.seconds, 1)} s.

| operation | p50 | p99 | per second |
| --- | ---: | ---: | ---: |
| recall by subject (${PER_SUBJECT} rows, limit 100), 1 client, ${fmt(QUERIES)} random queries | ${f(recall1)} queries |
| recall by subject, 8 clients | ${f(recall8)} queries |
| insert, single row per statement, 1 client (${fmt(SINGLES)}) | ${f(single1)} rows |
| insert, single row per statement, 8 clients (${fmt(SINGLES * 2)}) | ${f(single8)} rows |
| insert, bulk ${fmt(BATCH)} rows per statement, 1 client (${BATCHES} batches) | ${f(bulk)} batches = ${rowsPerSecond(bulk, BATCH)} rows |
| re-assert an existing fact (combine confidence), 1 client | ${f(combine)} rows |

Bulk vs single-row inserts, one client, same run: **${fmt((bulk.perSecond * BATCH) / single1.perSecond, 1)}×** the rows per second.
Each single-row request is one statement, one round trip and one commit; a bulk request pays those once for ${fmt(BATCH)} rows.

Recall by subject — \`EXPLAIN (ANALYZE, BUFFERS)\` of the statement the store runs (tenant and subject chosen at random):

\`\`\`
${planSubjectText}
\`\`\`

A later page of a tenant-wide recall (\`min_confidence=0.5\`, keyset after the first 100): the row comparison is an index
condition on the ordering index, so page N costs what page 1 costs.

\`\`\`
${planKeysetText}
\`\`\`

Total run ${fmt((Date.now() - began) / 1000, 0)} s. The schema \`${SCHEMA}\` is dropped at the end (\`-- --keep\` keeps it).
`;
  log(section);
  if (!args['no-write']) {
    writeSection('memory', section);
    log(`wrote the memory section of ${benchmarksPath}`);
  }
}

try {
  await main();
} finally {
  if (!args.keep) await pool.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`).catch(() => undefined);
  await pool.end();
}
