/**
 * `npm run loadtest:plots`: draws the load tests' figures as SVG from their CSVs in docs/loadtest/
 * (brief-timeseries.csv → brief-latency.svg, capacity.csv → capacity.svg), with Vega-Lite in
 * Node: no browser, no canvas. `npm run loadtest` and `npm run loadtest:capacity` call it too.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { docsDir, readCsv } from './lib/csv.js';

type Rows = Record<string, number | string>[];

const LATENCY_SERIES: Record<string, string> = {
  client_p50_ms: 'client p50',
  client_p95_ms: 'client p95',
  client_p99_ms: 'client p99',
  hit_p95_ms: 'client p95, cache hits',
  miss_p95_ms: 'client p95, cache misses',
  server_p95_ms: 'gateways p95',
};
const CPU_SERIES: Record<string, string> = {
  cluster_cores: 'cluster',
  generator_cores: 'generator',
  redis_cores: 'Redis',
  postgres_cores: 'Postgres',
  other_cores: 'other processes',
};
/** Legends name whole series, not a truncated start of them. */
const legend = { labelLimit: 400 };

/** Long form (one row per point and series) of the chosen columns, leaving out empty cells. */
function long(rows: Rows, x: string, series: Record<string, string>) {
  return rows.flatMap((r) =>
    Object.entries(series)
      .filter(([col]) => Number.isFinite(r[col]))
      .map(([col, label]) => ({ x: r[x], value: r[col], series: label })),
  );
}

const goalRules = (thresholds: number[]) => ({
  data: { values: thresholds.map((ms) => ({ ms, label: `${ms} ms` })) },
  layer: [
    {
      mark: { type: 'rule' as const, strokeDash: [4, 4], color: '#888' },
      encoding: { y: { field: 'ms', type: 'quantitative' as const } },
    },
    {
      mark: { type: 'text' as const, align: 'left' as const, dx: 4, dy: -6, color: '#666' },
      encoding: { y: { field: 'ms', type: 'quantitative' as const }, x: { value: 0 }, text: { field: 'label' } },
    },
  ],
});

/** Latency series on a log scale, with our goal (20 ms) and the brief's target (200 ms) marked. */
function latencyPanel(values: object[], x: object) {
  return {
    width: 640,
    height: 260,
    layer: [
      {
        data: { values },
        mark: { type: 'line' as const, point: true },
        encoding: {
          x,
          y: {
            field: 'value',
            type: 'quantitative' as const,
            title: 'latency (ms, log)',
            scale: { type: 'log' as const },
          },
          color: { field: 'series', type: 'nominal' as const, title: null, legend },
        },
      },
      goalRules([20, 200]),
    ],
  };
}

export function briefSpec(rows: Rows): TopLevelSpec {
  const latency = long(rows, 't_s', LATENCY_SERIES);
  const order = Object.values(CPU_SERIES);
  const cpu = long(rows, 't_s', CPU_SERIES).map((p) => ({ ...p, order: order.indexOf(p.series) }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: "The brief's scenario: latency and CPU over time (5 s windows)",
    vconcat: [
      latencyPanel(latency, { field: 'x', type: 'quantitative', title: 'seconds since start' }),
      {
        width: 640,
        height: 140,
        data: { values: cpu },
        mark: 'area',
        encoding: {
          x: { field: 'x', type: 'quantitative', title: 'seconds since start' },
          y: { field: 'value', type: 'quantitative', title: 'cores', stack: 'zero' },
          // The cluster at the bottom, everyone else's work on top.
          color: { field: 'series', type: 'nominal', title: null, sort: Object.values(CPU_SERIES), legend },
          order: { field: 'order', type: 'quantitative' },
        },
      },
    ],
    resolve: { scale: { color: 'independent' } },
  };
}

export function capacitySpec(rows: Rows): TopLevelSpec {
  const latency = long(rows, 'users', { p95_ms: 'client p95', server_p95_ms: 'gateways p95', p99_ms: 'client p99' });
  const rate = long(rows, 'users', { offered_req_per_s: 'offered', achieved_req_per_s: 'answered without error' });
  const x = {
    field: 'x',
    type: 'quantitative' as const,
    title: 'users (10 requests per user per minute, log)',
    scale: { type: 'log' as const },
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'Capacity: latency and throughput against users',
    vconcat: [
      latencyPanel(latency, x),
      {
        width: 640,
        height: 200,
        data: { values: rate },
        mark: { type: 'line', point: true },
        encoding: {
          x,
          y: { field: 'value', type: 'quantitative', title: 'requests/s' },
          color: { field: 'series', type: 'nominal', title: null, legend },
        },
      },
    ],
    resolve: { scale: { color: 'independent' } },
  };
}

/** Renders a Vega-Lite spec to SVG text, headless. */
export async function toSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const PLOTS: [csv: string, svg: string, spec: (rows: Rows) => TopLevelSpec][] = [
  ['brief-timeseries.csv', 'brief-latency.svg', briefSpec],
  ['capacity.csv', 'capacity.svg', capacitySpec],
];

/** Redraws every plot whose CSV exists in `dir`; returns the files written. */
export async function drawPlots(print: (line: string) => void, dir = docsDir): Promise<string[]> {
  const written: string[] = [];
  for (const [csv, svg, spec] of PLOTS) {
    if (!existsSync(join(dir, csv))) continue;
    writeFileSync(join(dir, svg), await toSvg(spec(readCsv(join(dir, csv)))));
    written.push(join(dir, svg));
    print(`loadtest: drew ${join(dir, svg)} from ${csv}`);
  }
  return written;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  drawPlots((line) => process.stdout.write(`${line}\n`)).then(
    (files) => {
      if (files.length === 0) process.stdout.write(`loadtest: no CSV in ${docsDir} to draw from\n`);
    },
    (err: unknown) => {
      process.stderr.write(`loadtest: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
