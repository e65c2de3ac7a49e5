import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, it } from 'node:test';
import { isAlive, readState } from '../../src/cluster/state.js';
import { cliPath, http } from '../helpers/cluster.js';
import { eventually, testConfig } from '../helpers/env.js';

let cleanup: (() => Promise<void>) | undefined;
after(() => cleanup?.());

function run(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, ['--import', 'tsx', cliPath, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

it('`skillserve up` serves and prints how to use it; `skillserve down` from another process stops everything', async () => {
  const t = await testConfig();
  cleanup = t.cleanup;
  const up = run(['up'], t.env);
  try {
    await eventually(async () => assert.match(up.output(), /skillserve is up/), { timeoutMs: 90_000 });
    const out = up.output();
    assert.match(out, new RegExp(`endpoint\\s+http://127\\.0\\.0\\.1:${t.config.PUBLIC_PORT}`));
    assert.match(out, /curl -s/);
    for (const name of ['skill-nlp', 'skill-onnx', 'dispatcher-1', 'gateway-1', 'gateway-2', 'nginx'])
      assert.match(out, new RegExp(name));

    const key = /dev key\s+(sks_\S+)/.exec(out)?.[1];
    assert.ok(key, 'the dev key is printed');
    const res = await http(`http://127.0.0.1:${t.config.PUBLIC_PORT}/v1/skills/nlp/infer`, {
      json: { input: 'What a lovely day!' },
      headers: { authorization: `Bearer ${key}` },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.output.label, 'positive');

    const status = run(['status'], t.env);
    assert.equal(await status.exited, 0, status.output());
    assert.match(status.output(), /readyz: 200/);

    const state = readState(t.config.RUN_DIR);
    assert.ok(state);
    const pids = [state.supervisorPid, ...state.processes.map((p) => p.pid!)];
    assert.equal(pids.length, 7);
    assert.ok(pids.every(isAlive));

    const down = run(['down'], t.env);
    assert.equal(await down.exited, 0, down.output());
    assert.match(down.output(), /stopped/);
    assert.equal(await up.exited, 0, up.output());
    assert.deepEqual(pids.filter(isAlive), [], 'no process outlives `down`');
    await assert.rejects(http(`http://127.0.0.1:${t.config.PUBLIC_PORT}/healthz`));
  } finally {
    if (up.child.exitCode === null) up.child.kill('SIGINT');
  }
});

it('children stop when their supervisor is killed outright', async () => {
  const t = await testConfig();
  const previous = cleanup;
  cleanup = async () => {
    await previous?.();
    await t.cleanup();
  };
  const up = run(['up'], t.env);
  await eventually(async () => assert.match(up.output(), /skillserve is up/), { timeoutMs: 90_000 });
  const state = readState(t.config.RUN_DIR)!;
  const roles = state.processes.filter((p) => p.name !== 'nginx').map((p) => p.pid!);
  up.child.kill('SIGKILL');
  // Node roles notice the closed IPC channel and shut down by themselves.
  await eventually(async () => assert.deepEqual(roles.filter(isAlive), []), { timeoutMs: 20_000 });
  // nginx has no such channel; `down` (or the next `up`) cleans it up from the state file.
  const down = run(['down'], t.env);
  await down.exited;
  const nginxPid = state.processes.find((p) => p.name === 'nginx')!.pid!;
  await eventually(async () => assert.equal(isAlive(nginxPid), false), { timeoutMs: 10_000 });
});

it('a wrong setting stops start-up with a message naming the variable', async () => {
  const t = await testConfig();
  const res = run(['up'], { ...t.env, GATEWAY_COUNT: 'two' });
  assert.equal(await res.exited, 2);
  assert.match(res.output(), /GATEWAY_COUNT: .*expected number.* \(got "two"\)/);
  await t.cleanup();
});
