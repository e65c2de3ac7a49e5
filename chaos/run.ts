/**
 * The failure experiments (`npm run chaos`): the real cluster under steady mixed load (cache hits,
 * misses, async jobs, memory writes), one fault at a time, each with its hypothesis, what clients
 * saw before, during and after it, the recovery time and the accepted jobs lost. Every experiment
 * prints its table and writes its section of docs/RESILIENCE.md with the command.
 *
 *   npm run chaos [-- --only skill-hang,redis-restart --fault-s 6 --concurrency 16 --base-port 18100
 *                    --prefix res-chaos --no-write]
 *
 * Bounded: each experiment stops its load after its windows; only 127.0.0.1; private Redis and
 * Postgres. `autoscale` runs last, on a cluster of its own with the autoscaler on.
 */
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machine, revision, writeSection } from '../bench/lib/doc-section.js';
import { autoscaleExperiment } from './autoscale.js';
import type { Outcome } from './experiment.js';
import { experiments } from './experiments.js';
import { phaseTable } from './measure.js';
import { CHAOS_ENV, runSuite } from './suite.js';

export const resiliencePath = fileURLToPath(new URL('../docs/RESILIENCE.md', import.meta.url));

/** One experiment as Markdown: hypothesis, fault, table, verdicts. */
export function outcomeSection(o: Outcome, command: string, context: string): string {
  const verdicts = o.checks.map((c) => `- ${c.ok ? '✔' : '✘'} ${c.what}${c.detail ? ` (${c.detail})` : ''}`);
  const breakers = Object.entries(o.breakerStates).map(([k, s]) => `\`${k}\`: ${s.join(' → ')}`);
  return [
    `### ${o.title}`,
    '',
    `**Hypothesis.** ${o.hypothesis}`,
    '',
    `**Injected:** ${o.injected}. **Recovery** (last non-2xx answer after the fault was cleared): ${o.recoveryMs} ms. ` +
      `**Async jobs:** ${o.jobsAccepted} accepted, ${o.jobsLost} lost.` +
      (Object.keys(o.restarts).length ? ` **Restarted:** ${JSON.stringify(o.restarts)}.` : '') +
      (o.runnerMaxLagMs !== undefined
        ? ` Longest stall of the load generator's own event loop: ${o.runnerMaxLagMs} ms.`
        : ''),
    '',
    ...phaseTable(o.phases),
    '',
    ...(breakers.length ? [`Breaker transitions (from the logs): ${breakers.join('; ')}.`, ''] : []),
    ...verdicts,
    ...o.notes.map((n) => `- ${n}`),
    '',
    `_${context}. Reproduce: \`${command}\`._`,
  ].join('\n');
}

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const { values: args } = parseArgs({
    options: {
      only: { type: 'string' },
      'fault-s': { type: 'string', default: '6' },
      concurrency: { type: 'string', default: '16' },
      'base-port': { type: 'string' },
      prefix: { type: 'string' },
      'no-write': { type: 'boolean', default: false },
    },
  });
  const only = args.only?.split(',');
  const chosen = only ? experiments.filter((e) => only.includes(e.name)) : experiments;
  const withAutoscale = !only || only.includes('autoscale');
  if (only && chosen.length + (withAutoscale ? 1 : 0) !== only.length) {
    process.stderr.write(`unknown experiment; known: ${experiments.map((e) => e.name).join(', ')}, autoscale\n`);
    process.exit(2);
  }
  const print = (line: string) => process.stdout.write(`${line}\n`);
  const command = `npm run chaos -- --only ${'NAME'} --fault-s ${args['fault-s']} --concurrency ${args.concurrency}`;
  const loadBefore = loadavg()[0]!;
  const write = (o: Outcome) => {
    const context = `${new Date().toISOString().slice(0, 10)}, ${revision()}, ${machine()}; load average ${loadavg()[0]!.toFixed(1)} (other work on the machine)`;
    const body = outcomeSection(o, command.replace('NAME', o.name), context);
    print(body);
    if (!args['no-write']) writeSection(`chaos:${o.name}`, body, resiliencePath);
  };
  const basePort = args['base-port'] ? Number(args['base-port']) : undefined;
  const outcomes = !chosen.length
    ? []
    : await runSuite({
        experiments: chosen,
        faultMs: Number(args['fault-s']) * 1000,
        concurrency: Number(args.concurrency),
        basePort,
        keyPrefix: args.prefix,
        print,
        onOutcome: write,
      });
  if (withAutoscale) {
    print('\n== autoscale: a cluster of its own, autoscaler on');
    const o = await autoscaleExperiment({
      concurrency: Number(args.concurrency) * 2,
      print,
      basePort,
      keyPrefix: args.prefix,
    });
    outcomes.push(o);
    write(o);
  }
  const failed = outcomes.flatMap((o) => o.checks.filter((c) => !c.ok).map((c) => `${o.name}: ${c.what}`));
  print(`\nsettings: ${JSON.stringify(CHAOS_ENV)}; load average before ${loadBefore.toFixed(1)}`);
  print(failed.length ? `hypotheses refuted:\n  ${failed.join('\n  ')}` : 'every hypothesis held');
  process.exit(failed.length ? 1 : 0);
}
