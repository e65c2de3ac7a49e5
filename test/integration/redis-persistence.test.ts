import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { checkRedis, PreflightError } from '../../src/cluster/preflight.js';
import { loadConfig } from '../../src/config/index.js';
import { cliPath } from '../helpers/cluster.js';
import { testConfig } from '../helpers/env.js';
import { OwnRedis } from '../helpers/redis-server.js';

/** `up` and a Redis that would lose accepted jobs on a restart. The Redis servers are the test's own. */
describe('up and the persistence of its Redis', () => {
  let volatile: OwnRedis;
  let durable: OwnRedis;
  before(async () => {
    [volatile, durable] = await Promise.all([OwnRedis.start({ persistent: false }), OwnRedis.start()]);
  });
  after(async () => {
    await Promise.all([volatile?.destroy(), durable?.destroy()]);
  });

  const config = (redis: OwnRedis, policy?: string) =>
    loadConfig({ REDIS_URL: redis.url, ...(policy ? { REDIS_PERSISTENCE: policy } : {}) });

  it('accepts a Redis with AOF on (the project’s redis/redis.conf)', async () => {
    assert.equal(await checkRedis(config(durable)), undefined);
  });

  it('refuses a Redis without persistence by default, saying why and what to do', async () => {
    await assert.rejects(checkRedis(config(volatile)), (err: Error) => {
      assert.ok(err instanceof PreflightError);
      assert.match(err.message, /does not persist its writes \(appendonly no\)/);
      assert.match(err.message, /CONFIG SET appendonly yes/);
      assert.match(err.message, /REDIS_PERSISTENCE=warn/);
      return true;
    });
  });

  it('with REDIS_PERSISTENCE=warn, starts but warns', async () => {
    assert.match((await checkRedis(config(volatile, 'warn'))) ?? '', /^WARNING: .*would lose every accepted job/);
  });

  it('`skillserve up` stops before starting anything', async () => {
    const t = await testConfig({ REDIS_URL: volatile.url, REDIS_PERSISTENCE: 'require' });
    try {
      const up = spawnSync(process.execPath, ['--import', 'tsx', cliPath, 'up'], {
        env: t.env,
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(up.status, 2, up.stdout + up.stderr);
      assert.match(up.stderr, /does not persist its writes/);
      assert.doesNotMatch(up.stdout, /is up/);
    } finally {
      await t.cleanup();
    }
  });
});
