/**
 * What being scraped costs each process: series and bytes per /metrics, the time one scrape
 * takes (median of 40, as the client sees it) and the process's own CPU per scrape (from its
 * process_cpu_seconds_total across the 40). Runs the real cluster (PROMETHEUS=off: the scrapes
 * come from here), after a short mixed load so the histograms have series.
 *
 *   npm run bench:scrape
 */
import { performance } from 'node:perf_hooks';
import { machine, revision, writeSection } from './lib/doc-section.js';
import { startBenchCluster } from './cluster.js';

const SCRAPES = 40;

function cpuSeconds(text: string): number {
  const line = text.split('\n').find((l) => l.startsWith('process_cpu_seconds_total'));
  return Number(line?.slice(line.lastIndexOf(' ') + 1) ?? NaN);
}

async function main() {
  const cluster = await startBenchCluster(() => undefined, { SKILLS: 'nlp,onnx' });
  try {
    for (let i = 0; i < 200; i++) {
      await fetch(cluster.url, {
        method: 'POST',
        headers: { ...cluster.headers, 'content-type': 'application/json' },
        body: JSON.stringify({ input: `scrape bench ${i % 20}`, task: i % 2 ? 'sentiment' : 'pos' }),
      }).then((r) => r.text());
    }
    const rows: string[] = [];
    for (const [name, port] of cluster.adminPorts()) {
      const url = `http://127.0.0.1:${port}/metrics`;
      const times: number[] = [];
      let text = await (await fetch(url)).text();
      const cpu0 = cpuSeconds(text);
      for (let i = 0; i < SCRAPES; i++) {
        const t0 = performance.now();
        text = await (await fetch(url)).text();
        times.push(performance.now() - t0);
      }
      const cpuMs = ((cpuSeconds(text) - cpu0) * 1000) / SCRAPES;
      times.sort((a, b) => a - b);
      const series = text.split('\n').filter((l) => l && !l.startsWith('#'));
      const own = series.filter((l) => l.startsWith('skillserve_')).length;
      rows.push(
        `| ${name} | ${series.length} | ${own} | ${(Buffer.byteLength(text) / 1024).toFixed(1)} | ${times[SCRAPES >> 1]!.toFixed(2)} | ${cpuMs.toFixed(2)} |`,
      );
    }
    const body = [
      '## Scrape cost per process',
      '',
      `\`npm run bench:scrape\` — ${machine()}, revision ${revision()}; the machine was shared with other work while measured.`,
      `After 200 mixed requests, each process's \`/metrics\` was fetched ${SCRAPES} times in a row. CPU per scrape is the`,
      "process's own (process_cpu_seconds_total, 10 ms resolution, so small values are coarse).",
      '',
      '| process | series | of them skillserve_* | KiB | median ms per scrape | process CPU ms per scrape |',
      '| --- | --- | --- | --- | --- | --- |',
      ...rows,
      '',
      "At the 5 s scrape interval of prometheus/prometheus.yml that is one such scrape per process every 5 s. A scrape also runs the process's readiness checks (a gateway: Postgres, Redis and each skill's gRPC health) for `skillserve_readiness_*`, which is most of a gateway's time per scrape.",
    ].join('\n');
    console.log(body);
    writeSection('scrape', body);
  } finally {
    await cluster.stop();
  }
}

await main();
