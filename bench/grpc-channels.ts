/**
 * Calls per second through the dispatcher's client pool to one nlp replica, with 1 and with 4
 * gRPC channels, side by side in one run (rounds interleaved so drift on a shared machine hits
 * both alike). Prints the figures and writes the `grpc-channels` section of docs/BENCHMARKS.md.
 *
 *   npm run bench:channels
 *   BENCH_CHANNELS_DURATION_S=5 BENCH_CHANNELS_ROUNDS=3 BENCH_CHANNELS_CONCURRENCY=256 npm run bench:channels
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { SkillClientPool } from '../src/skills/client-pool.js';
import { CachedRegistry, SkillRegistry } from '../src/skills/registry.js';
import { deleteKeys } from '../test/helpers/env.js';
import { median, percentile } from './lib/stats.js';
import { machine, writeSection } from './lib/doc-section.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const DURATION_S = Number(process.env.BENCH_CHANNELS_DURATION_S ?? 5);
const WARMUP_S = Number(process.env.BENCH_CHANNELS_WARMUP_S ?? 1);
const ROUNDS = Number(process.env.BENCH_CHANNELS_ROUNDS ?? 5);
const CONCURRENCY = Number(process.env.BENCH_CHANNELS_CONCURRENCY ?? 256);
const CHANNEL_COUNTS = [1, 4] as const;
const cliPath = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
/** Linux reports process CPU time in clock ticks of 1/100 s. */
const TICKS_PER_S = 100;

interface Round {
  round: number;
  channels: number;
  callsPerS: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  clientCpu: number;
  skillCpu: number;
}

function startSkill(prefix: string): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', cliPath, 'skill'], {
    env: {
      ...process.env,
      KEY_PREFIX: prefix,
      SKILL_NAME: 'nlp',
      SKILL_PORT: '0',
      METRICS_PORT: '0',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  return child;
}

/** CPU seconds a process has used (user + system), from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
}

/** Closed loop: `CONCURRENCY` callers, each sending its next call when the last one answered. */
async function measure(
  pool: SkillClientPool,
  seconds: number,
  skillPid: number,
  channels: number,
  round: number,
): Promise<Round> {
  const req = { id: 'b', text: 'Paris in May', parameters: { task: 'tokens', maxTokens: 0, modelVersion: '' } };
  const latencies: number[] = [];
  let errors = 0;
  let stop = false;
  const cpu0 = process.cpuUsage();
  const skill0 = cpuSeconds(skillPid);
  const t0 = performance.now();
  const timer = setTimeout(() => (stop = true), seconds * 1000);
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (!stop) {
        const s = performance.now();
        try {
          await pool.withReplica('nlp', (c) => c.infer(req, 10_000));
          latencies.push(performance.now() - s);
        } catch {
          errors++;
        }
      }
    }),
  );
  clearTimeout(timer);
  const elapsedS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  return {
    round,
    channels,
    callsPerS: latencies.length / elapsedS,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    errors,
    clientCpu: (cpu.user + cpu.system) / 1e6 / elapsedS,
    skillCpu: (cpuSeconds(skillPid) - skill0) / elapsedS,
  };
}

async function main(): Promise<void> {
  const prefix = `bench-channels-${randomUUID()}`;
  const redis = new Redis(REDIS_URL);
  const skill = startSkill(prefix);
  const rounds: Round[] = [];
  const loadBefore = loadavg()[0]!;
  try {
    const registry = new SkillRegistry(redis, prefix);
    const deadline = Date.now() + 60_000;
    while ((await registry.snapshot()).live.length === 0) {
      if (Date.now() > deadline || skill.exitCode !== null) throw new Error('the nlp skill did not register');
      await new Promise((r) => setTimeout(r, 200));
    }
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternate the order each round so neither setting always runs first.
      const order = round % 2 === 1 ? [...CHANNEL_COUNTS] : [...CHANNEL_COUNTS].reverse();
      for (const channels of order) {
        const pool = new SkillClientPool(new CachedRegistry(registry, 1_000), { channels });
        try {
          await measure(pool, WARMUP_S, skill.pid!, channels, round);
          const r = await measure(pool, DURATION_S, skill.pid!, channels, round);
          rounds.push(r);
          process.stdout.write(
            `round ${round}, ${channels} channel(s): ${Math.round(r.callsPerS)} calls/s, p50 ${r.p50Ms.toFixed(1)} ms, ` +
              `p99 ${r.p99Ms.toFixed(1)} ms, errors ${r.errors}, client CPU ${(r.clientCpu * 100).toFixed(0)} %, ` +
              `skill CPU ${(r.skillCpu * 100).toFixed(0)} %\n`,
          );
        } finally {
          pool.close();
        }
      }
    }
  } finally {
    skill.kill('SIGTERM');
    redis.disconnect();
    await deleteKeys(prefix);
  }
  writeSection('grpc-channels', section(rounds, [loadBefore, loadavg()[0]!]));
  process.stdout.write('wrote the grpc-channels section of docs/BENCHMARKS.md\n');
}

function section(rounds: Round[], load: [number, number]): string {
  const by = (channels: number) => rounds.filter((r) => r.channels === channels);
  const summary = CHANNEL_COUNTS.map((channels) => {
    const rs = by(channels);
    return {
      channels,
      callsPerS: median(rs.map((r) => r.callsPerS)),
      p50Ms: median(rs.map((r) => r.p50Ms)),
      p99Ms: median(rs.map((r) => r.p99Ms)),
      errors: rs.reduce((s, r) => s + r.errors, 0),
      clientCpu: median(rs.map((r) => r.clientCpu)),
      // Calls per CPU-second the caller spent: how much client work one call costs, which the
      // machine's load moves far less than calls/s.
      perCpuS: median(rs.map((r) => r.callsPerS / r.clientCpu)),
      skillCpu: median(rs.map((r) => r.skillCpu)),
      all: rs.map((r) => Math.round(r.callsPerS).toLocaleString('en-US')).join(', '),
    };
  });
  // Each round measured both settings back to back: its ratio is the fairest comparison on a
  // machine whose load changes under us.
  const ratios = [...new Set(rounds.map((r) => r.round))].map((round) => {
    const at = (channels: number) => rounds.find((r) => r.round === round && r.channels === channels)!.callsPerS;
    return at(4) / at(1);
  });
  const ratio = median(ratios);
  const pct = (v: number) => `${(v * 100).toFixed(0)} %`;
  const rows = summary.map(
    (s) =>
      `| ${s.channels} | ${Math.round(s.callsPerS).toLocaleString('en-US')} | ${s.all} | ${s.p50Ms.toFixed(1)} ms | ` +
      `${s.p99Ms.toFixed(1)} ms | ${s.errors} | ${pct(s.clientCpu)} | ${pct(s.skillCpu)} | ` +
      `${Math.round(s.perCpuS).toLocaleString('en-US')} |`,
  );
  return `## gRPC channels per replica: 1 vs 4

Measured ${new Date().toISOString()} with:

\`\`\`
BENCH_CHANNELS_DURATION_S=${DURATION_S} BENCH_CHANNELS_ROUNDS=${ROUNDS} BENCH_CHANNELS_CONCURRENCY=${CONCURRENCY} npm run bench:channels
\`\`\`

Machine: ${machine()}.
One nlp replica (the \`skill\` role as \`up\` starts it, its own process) and this benchmark's
process calling it through the dispatcher's \`SkillClientPool\` (discovery through Redis), with
${CONCURRENCY} callers in a closed loop sending \`Infer\` (task \`tokens\`, 3 words). Each round runs
both settings, ${WARMUP_S} s warm-up then ${DURATION_S} s measured, in alternating order; figures
are medians over ${ROUNDS} rounds. CPU is the share of one core each process used during the
measurement (100 % = one core busy). The machine is shared with other work (1-minute load average
${load[0].toFixed(1)} before the run, ${load[1].toFixed(1)} after, on ${cpus().length} cores), so absolute
figures move from round to round; the per-round ratio, both settings measured back to back, is the
figure to quote.

| channels | calls/s (median) | calls/s per round | p50 | p99 | errors | client CPU | skill CPU | calls per client CPU-second |
|--:|--:|---|--:|--:|--:|--:|--:|--:|
${rows.join('\n')}

4 channels / 1 channel, median of the per-round ratios: **${ratio.toFixed(2)}×** calls/s
(rounds: ${ratios.map((r) => `${r.toFixed(2)}×`).join(', ')}). ${
    ratio > 1.1
      ? 'One HTTP/2 connection is a bottleneck of its own in grpc-js (one socket, one write path); spreading calls over four lifts it, which is why SKILL_CLIENT_CHANNELS defaults to 4.'
      : 'Here the extra channels gain little: with both processes sharing the machine, the bottleneck was elsewhere (see the CPU columns).'
  }${
    Math.max(...summary.map((x) => x.clientCpu)) < 0.7
      ? ' The client used well under one core in every setting: other work on the machine took the rest, so these calls/s understate an idle machine.'
      : ''
  }`;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:channels failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
