import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { Autoscaler } from '../../src/cluster/autoscaler.js';
import { CpuSampler, readProcStat } from '../../src/cluster/proc-stats.js';

const policy = { upCpuPercent: 70, upWindowMs: 300_000, downCpuPercent: 30, downWindowMs: 600_000, cooldownMs: 60_000 };
const bounds = { min: 2, max: 10 };
const MIN = 60_000;

describe('autoscaler policy (the brief: up after 5 min above 70 %, down after 10 min below 30 %)', () => {
  it('adds one only after the CPU stayed high for the whole up window', () => {
    const a = new Autoscaler(policy);
    assert.equal(a.decide('gateway', 90, 2, bounds, 0).action, 'hold');
    assert.equal(a.decide('gateway', 90, 2, bounds, 4 * MIN).reason, 'warming');
    const d = a.decide('gateway', 90, 2, bounds, 5 * MIN);
    assert.equal(d.action, 'up');
    assert.equal(d.target, 3);
    assert.equal(d.reason, 'cpu_high');
  });

  it('a dip into the band restarts the window', () => {
    const a = new Autoscaler(policy);
    a.decide('gateway', 90, 2, bounds, 0);
    assert.equal(a.decide('gateway', 50, 2, bounds, 3 * MIN).reason, 'within_band');
    assert.equal(a.decide('gateway', 90, 2, bounds, 4 * MIN).action, 'hold');
    assert.equal(a.decide('gateway', 90, 2, bounds, 8 * MIN).action, 'hold');
    assert.equal(a.decide('gateway', 90, 2, bounds, 9 * MIN).action, 'up');
  });

  it('removes one after the down window, never below the minimum, and keeps a cooldown between steps', () => {
    const a = new Autoscaler(policy);
    a.decide('gateway', 5, 4, bounds, 0);
    assert.equal(a.decide('gateway', 5, 4, bounds, 9 * MIN).action, 'hold');
    assert.equal(a.decide('gateway', 5, 4, bounds, 10 * MIN).action, 'down');
    // The window starts again after a step, so the next one needs another 10 minutes.
    assert.equal(a.decide('gateway', 5, 3, bounds, 11 * MIN).action, 'hold');
    assert.equal(a.decide('gateway', 5, 3, bounds, 21 * MIN).action, 'down');
    const atMin = a.decide('gateway', 5, 2, bounds, 40 * MIN);
    assert.equal(atMin.action, 'hold');
    assert.equal(atMin.reason, 'at_bound');
  });

  it('never exceeds the maximum; a manual step restarts the windows and the cooldown', () => {
    const a = new Autoscaler({ ...policy, upWindowMs: 1, cooldownMs: 10 * MIN });
    a.decide('skill:nlp', 99, 10, { min: 1, max: 10 }, 0);
    assert.equal(a.decide('skill:nlp', 99, 10, { min: 1, max: 10 }, MIN).reason, 'at_bound');
    a.stepped('skill:nlp', 2 * MIN);
    a.decide('skill:nlp', 99, 3, { min: 1, max: 10 }, 2 * MIN);
    assert.equal(a.decide('skill:nlp', 99, 3, { min: 1, max: 10 }, 3 * MIN).reason, 'cooldown');
    assert.equal(a.decide('skill:nlp', 99, 3, { min: 1, max: 10 }, 13 * MIN).action, 'up');
  });

  it('keeps roles apart', () => {
    const a = new Autoscaler({ ...policy, upWindowMs: 1 });
    a.decide('gateway', 99, 2, bounds, 0);
    assert.equal(a.decide('skill:onnx', 99, 1, bounds, 10).action, 'hold');
    assert.equal(a.decide('gateway', 99, 2, bounds, 10).action, 'up');
  });
});

describe('per-process CPU from /proc', () => {
  it('measures a busy process near one core and an idle one near zero', async () => {
    const busy = spawn(process.execPath, ['-e', 'for(;;){}']);
    const idle = spawn(process.execPath, ['-e', 'setTimeout(()=>{}, 60000)']);
    try {
      const sampler = new CpuSampler();
      await new Promise((r) => setTimeout(r, 300));
      sampler.sample(busy.pid!);
      sampler.sample(idle.pid!);
      await new Promise((r) => setTimeout(r, 1_500));
      const b = sampler.sample(busy.pid!)!;
      const i = sampler.sample(idle.pid!)!;
      // On a shared 2-core machine the busy loop gets less than a core; it still dwarfs the idle one.
      assert.ok(b.cpuPercent > 20, `busy ${b.cpuPercent}`);
      assert.ok(i.cpuPercent < 10, `idle ${i.cpuPercent}`);
      assert.ok(b.cpuPercent > i.cpuPercent * 3);
      assert.ok(i.rssBytes > 1024 * 1024, 'rss is read');
    } finally {
      busy.kill('SIGKILL');
      idle.kill('SIGKILL');
    }
    await new Promise((r) => busy.once('exit', r));
    assert.equal(readProcStat(busy.pid!), undefined, 'a process that is gone has no figures');
  });
});
