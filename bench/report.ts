import type { Breakdown } from './breakdown.js';
import type { WrkResult } from './lib/wrk.js';

export type StackName = 'infer' | 'cached' | 'express' | 'http';

export const STACK_LABELS: Record<StackName, string> = {
  infer: 'infer path (POST /v1/skills/nlp/infer, no-cache)',
  cached: 'same request answered from the cache',
  express: 'ceiling: nginx → 2 × minimal Express',
  http: 'ceiling: nginx → 2 × bare node:http',
};

export interface Measurement {
  stack: StackName;
  connections: number;
  result: WrkResult;
  /** CPU time per request, µs: the stack's Node processes, nginx (master and workers), Redis. */
  cpuUs: { node: number; nginx: number; redis: number };
}

export interface Environment {
  date: string;
  /** The commit measured, and whether src/ had uncommitted changes. */
  revision: string;
  cpu: string;
  cores: number;
  os: string;
  node: string;
  nginx: string;
  wrk: string;
  /** 1-minute load averages when the run started and ended: other work competes for the same cores. */
  loadBefore: number;
  loadAfter: number;
  durationS: number;
  warmupS: number;
  command: string;
}

export interface Ratio {
  label: string;
  value: number;
}

const HEADING = '## End-to-end infer path vs ceilings';

const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + ' ms';
const rps = (v: number) => Math.round(v).toLocaleString('en-US');
const us = (v: number) => (Number.isFinite(v) ? `${v.toFixed(0)} µs` : '–');
const pct = (v: number) => (v * 100 >= 10 ? (v * 100).toFixed(0) : (v * 100).toFixed(1)) + ' %';

export function find(measurements: Measurement[], stack: StackName, connections: number): Measurement | undefined {
  return measurements.find((m) => m.stack === stack && m.connections === connections);
}

/** Requests/s ratios at `connections`: how far each layer is from the one below it. */
export function ratios(measurements: Measurement[], connections: number): Ratio[] {
  const r = (stack: StackName) => find(measurements, stack, connections)?.result.requestsPerSec ?? NaN;
  return [
    { label: `infer / Express ceiling (-c${connections})`, value: r('infer') / r('express') },
    { label: `infer / node:http ceiling (-c${connections})`, value: r('infer') / r('http') },
    { label: `Express / node:http (-c${connections})`, value: r('express') / r('http') },
    { label: `cache hit / Express ceiling (-c${connections})`, value: r('cached') / r('express') },
  ];
}

/** Total CPU per request (Node + nginx + Redis), µs: what one request costs the machine. */
export function totalCpuUs(m: Measurement | undefined): number {
  return m ? m.cpuUs.node + m.cpuUs.nginx + m.cpuUs.redis : NaN;
}

/** The measurements as a Markdown table (it also reads well in a terminal). */
export function renderTable(measurements: Measurement[]): string {
  const rows = measurements.map(({ stack, connections, result: r, cpuUs }) =>
    [
      STACK_LABELS[stack],
      String(connections),
      rps(r.requestsPerSec),
      ms(r.p50Ms),
      ms(r.p99Ms),
      us(cpuUs.node),
      us(cpuUs.nginx),
      us(cpuUs.redis),
      String(r.non2xx),
      String(r.socketErrors),
    ].join(' | '),
  );
  return [
    '| stack | connections | req/s | p50 | p99 | CPU/req: Node | nginx | Redis | non-2xx | socket errors |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    ...rows.map((row) => `| ${row} |`),
  ].join('\n');
}

export function renderRatios(list: Ratio[]): string {
  return list.map((r) => `- ${r.label}: **${pct(r.value)}**`).join('\n');
}

/**
 * A short reading of the figures, built from them (never from numbers typed in by hand), so
 * the text stays true when the figures change.
 */
export function interpret(measurements: Measurement[], b: Breakdown, cores: number): string {
  const r = (stack: StackName) => find(measurements, stack, 64)?.result.requestsPerSec ?? NaN;
  const [infer, express, http] = [r('infer'), r('express'), r('http')];
  return [
    `At 64 connections the infer path serves ${rps(infer)} req/s, ${pct(infer / express)} of the Express ceiling`,
    `(${rps(express)} req/s) and ${pct(infer / http)} of bare node:http (${rps(http)} req/s); Express itself`,
    `reaches ${pct(express / http)} of node:http. The ceilings do one Node hop per request; an infer request`,
    `also goes through Redis (BullMQ enqueue, completion, a pub/sub message back), a dispatcher and a gRPC`,
    `call to the skill, and all of those processes share the ${cores} cores with Redis and wrk, so it is expected`,
    `to sit far below them.`,
    `Answered from the cache, the same request reaches ${rps(r('cached'))} req/s,`,
    `${pct(r('cached') / express)} of the Express ceiling (the goal is at least 80 %:`,
    `${r('cached') / express >= 0.8 ? 'met' : 'not met'}). The gateway serves plain JSON infer requests on a node:http`,
    `fast path rather than through Express, and spends what that saves on the key check, the`,
    `rate-limit and cache round trip to Redis and the cache lookup.`,
    cpuReading(measurements),
    b.computeMs < b.clientMs / 4
      ? `On an idle cluster the model's ${ms(b.computeMs)} is a small part of a ${ms(b.clientMs)} round trip: ` +
        `most of the infer path's cost is transport and queueing, not the model.`
      : `On an idle cluster the model is ${pct(b.computeMs / b.clientMs)} of a ${ms(b.clientMs)} round trip.`,
  ].join(' ');
}

/** What the CPU-per-request columns say about the cache-hit path against the Express ceiling. */
function cpuReading(measurements: Measurement[]): string {
  const hit = find(measurements, 'cached', 64);
  const express = find(measurements, 'express', 64);
  if (!hit || !express) return '';
  return (
    `Per request at 64 connections, a cache hit costs the machine ${us(totalCpuUs(hit))} of CPU ` +
    `(Node ${us(hit.cpuUs.node)}, nginx ${us(hit.cpuUs.nginx)}, Redis ${us(hit.cpuUs.redis)}) against ` +
    `${us(totalCpuUs(express))} for the Express ceiling (Node ${us(express.cpuUs.node)}, nginx ${us(express.cpuUs.nginx)}), ` +
    `wrk not counted: on cores that every process shares, that ratio ` +
    `(${(totalCpuUs(hit) / totalCpuUs(express)).toFixed(2)}×) rather than the cache lookup's latency is what bounds ` +
    `the hit path's requests/s.`
  );
}

/** Total failed requests (non-2xx answers and socket errors) over all measurements. */
export function errorCount(measurements: Measurement[]): number {
  return measurements.reduce((sum, m) => sum + m.result.non2xx + m.result.socketErrors, 0);
}

/** This bench's section of docs/BENCHMARKS.md (doc-section.ts adds the markers). */
export function renderSection(
  env: Environment,
  measurements: Measurement[],
  breakdown: Breakdown,
  interpretation: string,
): string {
  const errors = errorCount(measurements);
  const b = breakdown;
  return `${HEADING}

Measured ${env.date} at ${env.revision} with:

\`\`\`
${env.command}
\`\`\`

Machine: ${env.cpu}, ${env.cores} cores, ${env.os}, Node ${env.node}, ${env.nginx}, ${env.wrk};
1-minute load average ${env.loadBefore.toFixed(2)} when the run started, ${env.loadAfter.toFixed(2)} when it ended
(the bench's own processes count towards both; the machine has ${env.cores} cores).
Each figure is one wrk run of ${env.durationS} s (1 thread, after a ${env.warmupS} s warm-up) through nginx on
127.0.0.1. wrk runs on the same ${env.cores} cores as nginx, the Node processes and Redis, so every
figure includes the load generator's own share of the CPU. Each stack runs alone: the cluster is
stopped before the ceilings start. Ceilings answer \`GET /\` with \`{"ok":true}\` and use the cluster's
nginx template (least_conn, upstream keepalive). These are single runs on a machine that may be shared:
compare the ratios within one run rather than absolute figures across runs. The CPU/req columns
are the CPU time (user + system, from /proc) that the stack's Node processes (for the cluster: its
gateways, dispatcher and skills; for a ceiling: its two upstreams), nginx (master and workers) and
the Redis server used during the measured run, divided by the requests wrk completed; wrk's own
CPU is not counted. Other work on the machine moves them much less than it moves requests/s.

Infer requests carry the cluster's development API key, \`Cache-Control: no-cache\` and a different
input each (bench/post-distinct.lua), so each one is computed through Redis/BullMQ and the skill and
no two share work by coalescing; the "answered from the cache" rows send one fixed request without
that header. Rate limits (per key and nginx's per IP) are raised out of reach for the run, as
all load comes from one key and one IP: their checks still run on every request.
${errors > 0 ? `\n**Warning: ${errors} requests failed in this run (non-2xx or socket errors); the figures below are not clean.**\n` : ''}
${renderTable(measurements)}

Ratios of requests/s:

${renderRatios([...ratios(measurements, 64), ...ratios(measurements, 1)])}

Where one infer request's time goes (medians of ${b.samples} sequential requests on an idle cluster, from the
\`timings\` of the answers): client round trip ${ms(b.clientMs)}, of which ${ms(b.outsideMs)} outside the gateway's
infer handler (nginx, the gateway's Express stack and body parsing, the client) and ${ms(b.gatewayMs)} in it:
${ms(b.skillMs)} for the dispatcher's gRPC round trip to the skill (model compute ${ms(b.computeMs)}) and
${ms(b.queueingMs)} for Redis and BullMQ (the rate-limit round trip, enqueue, pick-up, completion, the pub/sub message back).

${interpretation}`;
}
