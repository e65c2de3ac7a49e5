import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Config } from '../../src/config/index.js';
import { createKeys, defaultKeysPath, planFor, removeKeys } from '../../loadtest/lib/keys.js';
import { runOpenLoop } from '../../loadtest/lib/open-loop.js';
import { loadScenario } from '../../loadtest/lib/scenario.js';
import { summarize } from '../../loadtest/lib/stats.js';
import { startTestCluster } from '../helpers/cluster.js';
import { DATABASE_URL, freePorts, testConfig } from '../helpers/env.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Runs an npm script of the load-test kit against the test cluster; resolves with its exit code and output. */
function npmRun(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '--silent', script], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, out });
    });
  });
}

async function loadtestTenants(schema: string): Promise<number> {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
  try {
    const { rows } = await pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM "${schema}".tenants WHERE name LIKE 'loadtest-%'`,
    );
    return Number(rows[0]!.n);
  } finally {
    await pool.end();
  }
}

describe('the load-test kit against a running cluster', () => {
  let cluster: Awaited<ReturnType<typeof startTestCluster>>;
  let config: Config;
  let env: NodeJS.ProcessEnv;
  let cleanup: () => Promise<void>;
  before(async () => {
    // With its own Prometheus (as `up` runs it), which the load test asks for the gateways' view too.
    const [prometheusPort, nginxExporter, redisExporter, postgresExporter] = await freePorts(4);
    const t = await testConfig({
      PROMETHEUS: 'on',
      ALERTMANAGER: 'off',
      PROMETHEUS_PORT: String(prometheusPort),
      NGINX_EXPORTER_PORT: String(nginxExporter),
      REDIS_EXPORTER_PORT: String(redisExporter),
      POSTGRES_EXPORTER_PORT: String(postgresExporter),
    });
    config = t.config;
    env = t.env;
    cleanup = t.cleanup;
    cluster = await startTestCluster(t.config, t.env);
  });

  after(async () => {
    await cluster?.stop();
    await cleanup?.();
  });

  it('npm run loadtest:smoke: Locust users pass with no failed request and hits from the cache', async () => {
    const { code, out } = await npmRun('loadtest:smoke', env);
    assert.equal(code, 0, out);
    assert.match(out, new RegExp(`against ${cluster.endpoint.replace(/\./g, '\\.')}`));
    const client = /, (\d+) requests, (\d+) failed .*\((\d+) hits, (\d+) misses\)/.exec(out);
    assert.ok(client, out);
    const [, requests, failed, hits, misses] = client.map(Number);
    assert.ok(requests! > 300, `${requests} requests in 25 s from 30 users at 1/s`);
    assert.equal(failed, 0);
    assert.ok(hits! > 0 && misses! > 0, out);
    // The cluster's own view: its gateways counted about as many requests (between the monitor's
    // observations, every 2 s, so over a slightly shorter window; plus the probe's).
    const server = /\*\*Server side\*\*.*: (\d[\d,]*) requests, p50/.exec(out);
    assert.ok(server, out);
    const counted = Number(server[1]!.replace(/,/g, ''));
    assert.ok(counted > 0.7 * requests! && counted < 1.3 * requests!, `${counted} vs ${requests}\n${out}`);
    // The same quantiles through the cluster's Prometheus, which scraped the same gateways.
    assert.match(out, /Prometheus \(http:[^)]+\) over the same window: p50 \d[\d.]* ms, p95 \d[\d.]* ms/);
    // Its CPU is counted apart from the cluster's.
    assert.match(out, /the cluster's Prometheus and exporters \d/);
    assert.match(out, /smoke passed/);
    // Its tenants, keys and keys file are gone.
    assert.equal(await loadtestTenants(config.DATABASE_SCHEMA), 0);
    assert.equal(existsSync(defaultKeysPath(config)), false);
    assert.ok(existsSync(join(config.RUN_DIR, 'loadtest', 'smoke', 'report.html')), "Locust's HTML report");
  });

  it('exits non-zero when a threshold fails', async () => {
    // No answer comes back within a microsecond: the p95 threshold must fail the run.
    const { code, out } = await npmRun('loadtest:smoke', {
      ...env,
      LOADTEST_USERS: '5',
      LOADTEST_DURATION_S: '6',
      LOADTEST_P95_MS: '0.001',
    });
    assert.equal(code, 1, out);
    assert.match(out, /THRESHOLD FAILED: p95 .* is not below 0\.001 ms/);
    assert.equal(await loadtestTenants(config.DATABASE_SCHEMA), 0);
  });

  it('the open-loop generator sends the mix from several source addresses and checks every answer', async () => {
    const scenario = loadScenario();
    const plan = planFor(scenario, config, 300, 10);
    const path = join(config.RUN_DIR, 'open-loop-keys.json');
    const keys = await createKeys(config, plan, cluster.endpoint, path);
    try {
      const origin = Date.now();
      const samples = await runOpenLoop(
        {
          endpoint: cluster.endpoint,
          keys,
          scenario,
          users: 300,
          // 300 users at 10 a minute: 50 requests a second for 4 s.
          requestsPerUserPerMinute: 10,
          durationS: 4,
          sourceAddresses: ['127.0.0.1', '127.0.0.2', '127.0.0.3'],
        },
        origin,
      );
      const s = summarize(samples);
      assert.ok(s.requests > 100, `${s.requests} requests`);
      assert.deepEqual(s.errors, {});
      assert.ok(s.hits > 0 && s.misses > 0 && s.uncached.count > 0, JSON.stringify(s));
      assert.ok(samples.every((x) => x.latencyMs >= 0 && x.t >= 0));
    } finally {
      await removeKeys(config, keys, path);
    }
    assert.equal(await loadtestTenants(config.DATABASE_SCHEMA), 0);
  });
});
