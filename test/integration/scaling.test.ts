import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startLoad } from '../../chaos/load.js';
import { askSupervisor } from '../../src/cluster/control.js';
import type { ClusterStatus } from '../../src/cluster/status.js';
import { cliPath, http, startTestCluster } from '../helpers/cluster.js';
import { eventually, testConfig } from '../helpers/env.js';

const run = promisify(execFile);

describe('scaling a running cluster (skillserve scale, status, the stuck-process monitor)', () => {
  let cluster: Awaited<ReturnType<typeof startTestCluster>>;
  let t: Awaited<ReturnType<typeof testConfig>>;
  const status = () => askSupervisor(t.config.RUN_DIR, { cmd: 'status' }) as Promise<ClusterStatus>;
  const upstreams = () =>
    readFileSync(join(t.config.RUN_DIR, 'nginx', 'nginx.conf'), 'utf8').match(/server 127\.0\.0\.1:\d+/g) ?? [];

  before(async () => {
    t = await testConfig({
      SKILLS: 'nlp',
      GATEWAY_COUNT: '2',
      GATEWAY_MAX: '3',
      SKILL_REPLICAS_MAX: '2',
      SCALE_SAMPLE_MS: '500',
      STUCK_AFTER_MS: '3000',
    });
    cluster = await startTestCluster(t.config, t.env);
  });

  after(async () => {
    await cluster?.stop();
    await t?.cleanup();
  });

  it('adds a gateway under load and removes it again, without failing a request', async () => {
    const load = startLoad({ endpoint: cluster.endpoint, key: cluster.devKey.key, concurrency: 4, maxMs: 60_000 });
    try {
      await new Promise((r) => setTimeout(r, 500));
      await askSupervisor(t.config.RUN_DIR, { cmd: 'scale', counts: { gateway: 3 } });
      assert.equal(upstreams().length, 3, 'the new gateway is in nginx');
      const up = await status();
      assert.deepEqual(
        up.pools.filter((p) => p.key === 'gateway').map((p) => [p.replicas, p.lastDecision?.reason]),
        [[3, 'manual']],
      );
      assert.ok(up.processes.some((p) => p.name === 'gateway-3' && p.state === 'running'));
      await new Promise((r) => setTimeout(r, 1_000));
      await askSupervisor(t.config.RUN_DIR, { cmd: 'scale', counts: { gateway: 2 } });
      assert.equal(upstreams().length, 2, 'the removed gateway left nginx');
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      const result = await load.stop();
      assert.ok(result.sent > 20, `load ran (${result.sent} requests)`);
      assert.equal(
        result.failed + result.shed,
        0,
        `no request failed: ${JSON.stringify(result.byStatus)}, ${result.retried} retried after a closed connection`,
      );
    }
    assert.deepEqual(
      (await status()).processes.filter((p) => p.name.startsWith('gateway')).map((p) => p.name),
      ['gateway-1', 'gateway-2'],
    );
  });

  it('adds a skill replica that registers, and removes it (it withdraws from the registry)', async () => {
    const instances = async () =>
      (await http(`${cluster.endpoint}/v1/skills/nlp`, { headers: { authorization: `Bearer ${cluster.devKey.key}` } }))
        .body.instances.length as number;
    await askSupervisor(t.config.RUN_DIR, { cmd: 'scale', counts: { 'skill:nlp': 2 } });
    assert.ok((await status()).processes.some((p) => p.name === 'skill-nlp-2' && p.state === 'running'));
    await eventually(async () => assert.equal(await instances(), 2));
    await askSupervisor(t.config.RUN_DIR, { cmd: 'scale', counts: { 'skill:nlp': 1 } });
    await eventually(async () => assert.equal(await instances(), 1));
    assert.deepEqual(
      (await status()).processes.filter((p) => p.name.startsWith('skill')).map((p) => p.name),
      ['skill-nlp'],
    );
  });

  it('rejects counts outside the bounds and unknown roles, changing nothing', async () => {
    await assert.rejects(askSupervisor(t.config.RUN_DIR, { cmd: 'scale', counts: { gateway: 4 } }), /between 1 and 3/);
    await assert.rejects(
      askSupervisor(t.config.RUN_DIR, { cmd: 'scale', counts: { 'skill:nope': 2 } }),
      /no such pool/,
    );
    assert.equal(upstreams().length, 2);
  });

  it('`skillserve status` from another process shows CPU, memory, restarts, bounds and decisions', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', cliPath, 'status'], { env: t.env });
    assert.match(stdout, /gateway-1\s+\d+\s+running\s+[\d.]+ %\s+\d+ MB\s+0\s/);
    assert.match(stdout, /^gateway\s+2\s+2-3\s/m);
    assert.match(stdout, /^skill:nlp\s+1\s+1-2\s.*manual/m);
    assert.match(stdout, /breakers:/);
    assert.match(stdout, /readyz: 200/);
  });

  it('`skillserve scale` rejects a malformed argument with a usage error', async () => {
    await assert.rejects(
      run(process.execPath, ['--import', 'tsx', cliPath, 'scale', 'gateway=lots'], { env: t.env }),
      (err: { code: number; stderr: string }) => err.code === 2 && /not <role>=<count>/.test(err.stderr),
    );
  });

  it('restarts a gateway that is alive but stuck (SIGSTOP: /healthz stops answering)', async () => {
    const gw = cluster.processes.find((p) => p.spec.name === 'gateway-2')!;
    const before = gw.restarts;
    process.kill(gw.pid!, 'SIGSTOP');
    await eventually(async () => assert.ok(gw.restarts > before && gw.adminPort, 'restarted'), { timeoutMs: 30_000 });
    assert.ok(
      cluster.events.some((e) => /gateway-2: stuck \(\/healthz not answering\)/.test(e)),
      'logged',
    );
  });

  it('exports the replica counts and scaling decisions on the supervisor’s /metrics', async () => {
    const state = JSON.parse(readFileSync(join(t.config.RUN_DIR, 'cluster.json'), 'utf8')) as { adminPort: number };
    const text = await (await fetch(`http://127.0.0.1:${state.adminPort}/metrics`)).text();
    assert.match(text, /skillserve_replicas\{role="gateway",skill=""\} 2/);
    assert.match(
      text,
      /skillserve_scaling_decisions_total\{role="gateway",skill="",direction="up",reason="manual"\} 1/,
    );
    assert.match(
      text,
      /skillserve_scaling_decisions_total\{role="skill",skill="nlp",direction="down",reason="manual"\} 1/,
    );
  });
});
