import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, type IncomingHttpHeaders, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mulberry32 } from '../scripts/models/prng.js';
import { runWrk, type WrkResult } from './lib/wrk.js';

/** Input width of the `mlp` model (models/mlp/config.json: FP32 [-1, 256]). */
export const MLP_WIDTH = 256;

/** Fixed pseudo-random floats in [-1, 1), 3 decimals: the part of every mlp input that does not vary. */
export function fixedFloats(n: number, seed = 7): number[] {
  const next = mulberry32(seed);
  return Array.from({ length: n }, () => Math.round((next() * 2 - 1) * 1_000) / 1_000);
}

/** One mlp request body; `a` and `b` are the first two floats, the rest is fixed. */
export function mlpBody(a: number, b: number, rest = fixedFloats(MLP_WIDTH - 2)): string {
  return JSON.stringify({
    model: 'mlp',
    inputs: [{ name: 'input', datatype: 'FP32', shape: [1, MLP_WIDTH], data: [a, b, ...rest] }],
  });
}

/**
 * wrk against the onnx skill with a distinct mlp input per request: the first float counts
 * requests, the second is this window's `nonce`, so neither coalescing nor the cache can answer.
 */
export async function wrkMlp(opts: {
  endpoint: string;
  headers: Record<string, string>;
  connections: number;
  durationS: number;
  nonce: number;
}): Promise<WrkResult> {
  const tail = `,${fixedFloats(MLP_WIDTH - 2).join(',')}]}]}`;
  const head = `{"model":"mlp","inputs":[{"name":"input","datatype":"FP32","shape":[1,${MLP_WIDTH}],"data":[`;
  const lua = `
-- No response() callback: parsing every reply in Lua would take CPU from the servers.
local counter = 0
local head = '${head}'
local tail = '${tail}'
wrk.method = "POST"
function request()
  counter = counter + 1
  return wrk.format(nil, "/v1/skills/onnx/infer", nil, head .. counter .. ",${opts.nonce}" .. tail)
end
`;
  const dir = mkdtempSync(join(tmpdir(), 'skillserve-queue-'));
  const script = join(dir, 'mlp.lua');
  writeFileSync(script, lua);
  try {
    return await runWrk({
      url: `${opts.endpoint}/v1/skills/onnx/infer`,
      connections: opts.connections,
      durationS: opts.durationS,
      script,
      timeoutS: 20,
      headers: { ...opts.headers, 'Content-Type': 'application/json', 'Cache-Control': 'no-store' },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A keep-alive HTTP client for sequential requests: one connection, reused, like wrk's. */
export function keepAliveClient(maxSockets = 1) {
  const agent = new Agent({ keepAlive: true, maxSockets });
  return {
    /** POSTs `body` and resolves with the status and the parsed JSON answer. */
    post(
      url: string,
      headers: Record<string, string>,
      body: string,
    ): Promise<{ status: number; json: any; headers: IncomingHttpHeaders }> {
      return new Promise((resolve, reject) => {
        const req = request(
          url,
          {
            method: 'POST',
            agent,
            headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
            timeout: 30_000,
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString('utf8');
              let json: unknown;
              try {
                json = JSON.parse(text);
              } catch {
                json = undefined;
              }
              resolve({ status: res.statusCode ?? 0, json, headers: res.headers });
            });
            res.on('error', reject);
          },
        );
        req.on('timeout', () => req.destroy(new Error(`no answer from ${url} in 30 s`)));
        req.on('error', reject);
        req.end(body);
      });
    },
    close(): void {
      agent.destroy();
    },
  };
}
