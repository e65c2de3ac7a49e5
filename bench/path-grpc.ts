/**
 * The direct-gRPC leg of bench/path.ts, in its own process so that its event loop is not the
 * bench's: `connections` concurrent loops of Infer calls to replica `address` for `durationS`,
 * each input distinct. Reports `{ requests, failed, p50Ms, p99Ms, requestsPerSec }` over IPC.
 *
 *   path-grpc.ts <address> <connections> <durationS> <nonce>
 */
import { performance } from 'node:perf_hooks';
import { SkillClient } from '../src/skills/client.js';
import { percentile } from './lib/stats.js';

const [address, connArg, durArg, nonce = '0'] = process.argv.slice(2);
if (!address || !connArg || !durArg || !process.send)
  throw new Error('usage: (forked by bench/path.ts) path-grpc.ts <address> <connections> <durationS> <nonce>');
const connections = Number(connArg);
const durationMs = Number(durArg) * 1000;
const client = new SkillClient('nlp', address);

const text = (i: number) => `My sister Maria lives in Madrid and loves her new job. #${nonce}-${i}`;
const call = (i: number) =>
  client.infer(
    { id: String(i), text: text(i), parameters: { task: 'sentiment', maxTokens: 0, modelVersion: '' } },
    10_000,
  );

// The connection and the JIT warm up before the window, as wrk's connections are open before it counts.
for (let i = 0; i < 200; i++) await call(-i - 1);

const latencies: number[] = [];
let failed = 0;
let counter = 0;
const start = performance.now();
const until = start + durationMs;
await Promise.all(
  Array.from({ length: connections }, async () => {
    while (performance.now() < until) {
      const t = performance.now();
      try {
        await call(counter++);
        latencies.push(performance.now() - t);
      } catch {
        failed++;
      }
    }
  }),
);
const elapsedS = (performance.now() - start) / 1000;
client.close();
process.send(
  {
    requests: latencies.length + failed,
    failed,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    requestsPerSec: latencies.length / elapsedS,
  },
  () => process.exit(0),
);
