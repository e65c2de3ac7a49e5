import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { AppError } from '../../src/errors/index.js';
import { SkillClient } from '../../src/skills/client.js';
import { SkillClientPool } from '../../src/skills/client-pool.js';
import { CachedRegistry, type SkillReplica, SkillRegistry } from '../../src/skills/registry.js';
import { cliPath } from '../helpers/cluster.js';
import { eventually, REDIS_URL, testConfig } from '../helpers/env.js';

function startSkillProcess(env: NodeJS.ProcessEnv, name: string): ChildProcess {
  const args = [...process.execArgv.filter((a) => !a.startsWith('--test')), cliPath, 'skill'];
  const child = spawn(process.execPath, args, {
    env: { ...env, SKILL_NAME: 'nlp', SKILL_PORT: '0', METRICS_PORT: '0', INSTANCE_ID: name },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  child.stderr?.on('data', (d: Buffer) => process.stderr.write(`[${name}] ${d}`));
  return child;
}

/**
 * Per-replica circuit breakers in the client pool the dispatchers and the gateway's direct path
 * share: a hung replica (SIGSTOP) loses its calls to the healthy one and its breaker opens; a
 * health probe closes it when it answers again; with every replica hung, calls fail at once with
 * BREAKER_OPEN and a Retry-After instead of waiting for their deadline.
 */
describe('skill replica circuit breakers (two real nlp replicas, one or both hung)', () => {
  let cleanup: () => Promise<void>;
  let redis: Redis;
  let pool: SkillClientPool;
  const children: ChildProcess[] = [];
  let replicas: SkillReplica[] = [];
  const transitions: string[] = [];

  const req = (i: number) => ({
    id: String(i),
    text: `Breaker test ${i} is great.`,
    parameters: { task: 'sentiment', maxTokens: 0, modelVersion: '' },
  });
  const callMany = async (count: number, concurrency: number) => {
    const failures: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) {
          const i = next++;
          try {
            const res = await pool.withReplica('nlp', (c) => c.infer(req(i), 20_000), 20_000);
            if (res.error?.code) failures.push(res.error.code);
          } catch (err) {
            failures.push((err as { code?: string }).code ?? String(err));
          }
        }
      }),
    );
    return failures;
  };
  const stateOf = (instance: string) => pool.breakerStates().find((b) => b.replica === instance)?.state;

  before(async () => {
    // A hung replica stops heartbeating too; a long TTL keeps it listed, so what takes it out of
    // the calls here is its breaker, not the registry.
    const t = await testConfig({ SKILL_TTL_MS: '30000' });
    cleanup = t.cleanup;
    children.push(startSkillProcess(t.env, 'replica-a'), startSkillProcess(t.env, 'replica-b'));
    redis = new Redis(REDIS_URL);
    const registry = new SkillRegistry(redis, t.config.KEY_PREFIX);
    replicas = await eventually(
      async () => {
        const { live } = await registry.snapshot();
        assert.equal(live.length, 2);
        return live.sort((a, b) => a.instance.localeCompare(b.instance));
      },
      { timeoutMs: 60_000 },
    );
    // Each replica loads its model on its first call, which blocks its event loop for a moment on
    // a busy machine: warm them up first, so the short keepalive below takes only the hang for one.
    await Promise.all(
      replicas.map(async (r) => {
        const c = new SkillClient('nlp', r.address);
        try {
          assert.equal((await c.infer(req(0), 60_000)).error?.code ?? '', '');
        } finally {
          c.close();
        }
      }),
    );
    pool = new SkillClientPool(new CachedRegistry(registry, t.config.REGISTRY_CACHE_MS), {
      channels: 2,
      keepaliveMs: 1_000,
      breaker: { resetMs: 500, minCalls: 3, windowMs: 5_000 },
      onBreakerChange: (c) => transitions.push(`${c.replica}:${c.state}`),
    });
    assert.deepEqual(await callMany(40, 8), []);
  });

  after(async () => {
    pool?.close();
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGCONT');
        c.kill('SIGKILL');
      }
    }
    redis?.disconnect();
    await cleanup?.();
  });

  it('a hung replica: its calls move to the healthy one, its breaker opens, and closes once it answers again', async () => {
    const [a, b] = replicas as [SkillReplica, SkillReplica];
    assert.equal(stateOf(a.instance), 'closed');
    const running = callMany(300, 16);
    await new Promise((r) => setTimeout(r, 50));
    children[0]!.kill('SIGSTOP');
    assert.deepEqual(await running, [], 'every call was answered, by the healthy replica when not by the hung one');
    await eventually(async () => assert.notEqual(stateOf(a.instance), 'closed'));
    assert.equal(stateOf(b.instance), 'closed');
    assert.ok(transitions.includes(`${a.instance}:open`), transitions.join(', '));
    // While it is out, no call is sent to it (a half-open probe is a health check, not a request).
    assert.deepEqual(await callMany(50, 8), []);

    children[0]!.kill('SIGCONT');
    await eventually(async () => assert.equal(stateOf(a.instance), 'closed'), { timeoutMs: 30_000 });
    assert.ok(transitions.includes(`${a.instance}:half-open`), transitions.join(', '));
    assert.deepEqual(await callMany(40, 8), []);
  });

  it('every replica hung: calls fail fast with BREAKER_OPEN and a Retry-After, then recover', async () => {
    for (const c of children) c.kill('SIGSTOP');
    // The calls caught in flight are dropped by keepalive; once both breakers are open, the
    // next call is refused before it is sent.
    await callMany(20, 4);
    const err = await eventually(async () => {
      const e = await pool
        .withReplica('nlp', (c) => c.infer(req(1), 20_000), 20_000)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.ok(e instanceof AppError && e.code === 'BREAKER_OPEN', `got ${String(e)}`);
      return e;
    });
    assert.equal(err.status, 503);
    assert.ok((err.retryAfterS ?? 0) >= 1, 'Retry-After from the breaker reset time');
    for (const c of children) c.kill('SIGCONT');
    await eventually(async () => assert.deepEqual(await callMany(10, 2), []), { timeoutMs: 20_000 });
    await eventually(async () =>
      assert.deepEqual(
        pool.breakerStates().map((s) => s.state),
        ['closed', 'closed'],
      ),
    );
  });
});
