import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { type Config, loadConfig } from '../../src/config/index.js';
import { ensureModels } from './models.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * The first port the kernel hands out for outgoing connections (Linux: 32768 by default). Ports
 * picked for listening stay below it: a port in that range can be free when we look and be the
 * local end of some Redis or Postgres connection by the time a gateway binds it.
 */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 21_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

/** `count` consecutive free TCP ports on 127.0.0.1, below the ephemeral range. */
export async function freePorts(count: number): Promise<number[]> {
  const span = ephemeralLow() - 20_000 - count;
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * span);
    const ports = Array.from({ length: count }, (_, i) => base + i);
    if ((await Promise.all(ports.map(isFree))).every(Boolean)) return ports;
  }
  throw new Error('no free ports found');
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A config isolated for one test file: its own key prefix, run directory and ports. */
export async function testConfig(
  overrides: Record<string, string> = {},
): Promise<{ config: Config; env: NodeJS.ProcessEnv; cleanup: () => Promise<void> }> {
  const id = randomUUID();
  const prefix = `test-${id}`;
  const schema = `test_${id.replaceAll('-', '')}`;
  const runDir = mkdtempSync(join(tmpdir(), 'skillserve-test-'));
  // nginx, then the two gateways (GATEWAY_BASE_PORT + i): all three checked free; nginx's status
  // listener apart.
  const [publicPort, gatewayBase] = await freePorts(3);
  const [statusPort] = await freePorts(1);
  const env: Record<string, string> = {
    KEY_PREFIX: prefix,
    DATABASE_SCHEMA: schema,
    RUN_DIR: runDir,
    PUBLIC_PORT: String(publicPort),
    GATEWAY_BASE_PORT: String(gatewayBase),
    NGINX_STATUS_PORT: String(statusPort),
    // A Prometheus per test cluster is the monitoring tests' business (they turn it on).
    PROMETHEUS: 'off',
    // Scaling is the scaling tests' business: a busy shared machine must not resize other tests' clusters.
    AUTOSCALE: 'off',
    LOG_LEVEL: 'warn',
    // The machine's Redis is shared by every test run; whether it persists is the machine's
    // choice, not a test's. The test of persistence itself runs its own Redis (redis/redis.conf).
    REDIS_PERSISTENCE: 'warn',
    REQUEST_TIMEOUT_MS: '8000',
    SKILL_TTL_MS: '2000',
    SKILL_HEARTBEAT_MS: '500',
    REGISTRY_CACHE_MS: '300',
    SHUTDOWN_TIMEOUT_MS: '5000',
    // The onnx skill (started by default) serves the generated models, wherever the test runs from.
    MODEL_REPOSITORY: ensureModels(),
    ...overrides,
  };
  const fullEnv = { ...process.env, ...env };
  const config = loadConfig(fullEnv);
  return {
    config,
    env: fullEnv,
    async cleanup() {
      await deleteKeys(prefix);
      await dropSchema(schema);
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}

export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** Drops a test run's Postgres schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
  try {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await pool.end();
  }
}

/** Removes every Redis key a test run created under its prefix. */
export async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export async function eventually<T>(
  fn: () => Promise<T>,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      return await fn();
    } catch (err) {
      lastErr = err;
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 200));
    }
  }
  throw lastErr;
}
