import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { Config } from '../../src/config/index.js';
import { SkillClient } from '../../src/skills/client.js';
import { SkillClientPool } from '../../src/skills/client-pool.js';
import { CachedRegistry, type SkillReplica, SkillRegistry } from '../../src/skills/registry.js';
import { cliPath } from '../helpers/cluster.js';
import { eventually, REDIS_URL, testConfig } from '../helpers/env.js';

/** A real `skill` role process (the CLI, as `up` starts it), announcing itself in Redis. */
function startSkillProcess(env: NodeJS.ProcessEnv, name: string): ChildProcess {
  const args = [...process.execArgv.filter((a) => !a.startsWith('--test')), cliPath, 'skill'];
  const child = spawn(process.execPath, args, {
    env: { ...env, SKILL_NAME: 'nlp', SKILL_PORT: '0', METRICS_PORT: '0', INSTANCE_ID: name },
    // The IPC channel makes the skill stop by itself should this test process die.
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  child.stderr?.on('data', (d: Buffer) => process.stderr.write(`[${name}] ${d}`));
  return child;
}

describe('discovery and the client pool, with two real nlp replicas', () => {
  let config: Config;
  let cleanup: () => Promise<void>;
  let redis: Redis;
  let registry: SkillRegistry;
  let pool: SkillClientPool;
  const children: ChildProcess[] = [];
  let replicas: SkillReplica[] = [];

  const req = (i: number) => ({
    id: String(i),
    text: `Replica test ${i} is great.`,
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
            const res = await pool.withReplica('nlp', (c) => c.infer(req(i), 5_000));
            if (res.error?.code) failures.push(res.error.code);
          } catch (err) {
            failures.push((err as { code?: string }).code ?? String(err));
          }
        }
      }),
    );
    return failures;
  };
  const requestsServed = async (address: string) => {
    const c = new SkillClient('nlp', address);
    try {
      return (await c.metrics(2_000)).requestsTotal;
    } finally {
      c.close();
    }
  };

  before(async () => {
    const t = await testConfig();
    config = t.config;
    cleanup = t.cleanup;
    children.push(startSkillProcess(t.env, 'replica-a'), startSkillProcess(t.env, 'replica-b'));
    redis = new Redis(REDIS_URL);
    registry = new SkillRegistry(redis, config.KEY_PREFIX);
    replicas = await eventually(
      async () => {
        const { live } = await registry.snapshot();
        assert.equal(live.length, 2, `live: ${live.map((r) => r.instance).join(', ')}`);
        return live.sort((a, b) => a.instance.localeCompare(b.instance));
      },
      { timeoutMs: 60_000 },
    );
    pool = new SkillClientPool(new CachedRegistry(registry, config.REGISTRY_CACHE_MS), {
      channels: 4,
    });
  });

  after(async () => {
    pool?.close();
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    redis?.disconnect();
    await cleanup?.();
  });

  it('each replica registers its version, model state and capacity', () => {
    assert.deepEqual(
      replicas.map((r) => r.instance),
      ['replica-a', 'replica-b'],
    );
    for (const r of replicas) {
      assert.match(r.state ?? '', /^(UNLOADED|LOADING|READY)$/);
      assert.match(r.version ?? '', /^\d+\.\d+\.\d+/);
      assert.deepEqual(r.capacity, { maxConcurrent: config.SKILL_MAX_CONCURRENCY, maxBatch: config.SKILL_MAX_BATCH });
      assert.match(r.model, /^wink-eng-lite-web-model@/);
    }
    assert.notEqual(replicas[0]!.address, replicas[1]!.address);
  });

  it('spreads calls over both replicas, through a reused client with 4 channels each', async () => {
    const before = await Promise.all(replicas.map((r) => requestsServed(r.address)));
    const failures = await callMany(400, 32);
    assert.deepEqual(failures, []);
    const after = await Promise.all(replicas.map((r) => requestsServed(r.address)));
    const served = after.map((n, i) => n - before[i]!);
    assert.equal(
      served.reduce((a, b) => a + b, 0),
      400,
    );
    // Least outstanding requests: neither replica is left idle while the other queues.
    for (const n of served) assert.ok(n >= 40, `served per replica: ${served.join(', ')}`);
    const loads = pool.loads();
    assert.deepEqual(
      loads.map((l) => l.channels),
      [4, 4],
    );
  });

  it('a replica killed outright (no withdraw): calls keep succeeding, and it leaves the live list after its TTL', async () => {
    const victim = replicas[0]!;
    const survivor = replicas[1]!;
    const running = callMany(600, 16);
    // Kill it while calls are in flight on it.
    await new Promise((r) => setTimeout(r, 50));
    children[0]!.kill('SIGKILL');
    const failures = await running;
    assert.deepEqual(failures, [], 'every call failed over to the live replica');
    assert.deepEqual(await callMany(100, 8), []);

    // It never withdrew, so the registry lists it until its heartbeat entry expires.
    const live = await eventually(
      async () => {
        const { live } = await registry.snapshot();
        assert.deepEqual(
          live.map((r) => r.instance),
          [survivor.instance],
        );
        return live;
      },
      { timeoutMs: config.SKILL_TTL_MS * 5 },
    );
    assert.ok(!live.some((r) => r.address === victim.address));
    // The swept entry is gone from Redis too, not just filtered.
    await eventually(async () => {
      const fields = await redis.hkeys(`${config.KEY_PREFIX}:{registry}:live`);
      assert.deepEqual(fields, [`nlp|${survivor.address}`]);
    });
    assert.deepEqual(await callMany(50, 8), []);
    assert.deepEqual(
      pool.loads().map((l) => l.address),
      [survivor.address],
    );
  });
});
