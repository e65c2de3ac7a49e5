import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ModelState } from '../../src/skills/backend.js';
import { ModelSlot, SlotRetiredError } from '../../src/skills/model-slot.js';
import { eventually } from '../helpers/env.js';

/** A model whose load and unload the test counts and, when it wants, holds open. */
function counted(opts: { idleUnloadMs?: number; failLoads?: number } = {}) {
  const log = { loads: 0, unloads: 0, states: [] as ModelState[] };
  let failures = opts.failLoads ?? 0;
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  const slot = new ModelSlot<{ id: number }>({
    async load() {
      log.loads++;
      if (gate) await gate;
      if (failures-- > 0) throw new Error('load failed');
      return { id: log.loads };
    },
    async unload() {
      log.unloads++;
    },
    idleUnloadMs: opts.idleUnloadMs ?? 0,
    onState: (s) => log.states.push(s),
  });
  return {
    slot,
    log,
    holdLoads() {
      gate = new Promise((r) => (open = r));
    },
    releaseLoads() {
      gate = undefined;
      open?.();
    },
  };
}

/** A call that runs until the test releases it. */
function held() {
  let release!: () => void;
  const done = new Promise<void>((r) => (release = r));
  return { release, fn: async (m: { id: number }) => (await done, m.id) };
}

describe('ModelSlot', () => {
  it('loads lazily, once, for concurrent first calls', async () => {
    const { slot, log, holdLoads, releaseLoads } = counted();
    assert.equal(slot.state, 'UNLOADED');
    assert.equal(log.loads, 0);
    holdLoads();
    const calls = [1, 2, 3].map(() => slot.use(async (m) => m.id));
    await eventually(async () => assert.equal(slot.state, 'LOADING'));
    releaseLoads();
    assert.deepEqual(await Promise.all(calls), [1, 1, 1]);
    assert.equal(log.loads, 1);
    assert.equal(slot.state, 'READY');
    assert.deepEqual(log.states, ['LOADING', 'READY']);
  });

  it('unloads after the idle time, never during a call, and loads again on the next call', async () => {
    const { slot, log } = counted({ idleUnloadMs: 30 });
    const call = held();
    const running = slot.use(call.fn);
    await eventually(async () => assert.equal(slot.state, 'READY'));
    // Well past the idle time with a call in flight: still loaded.
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(log.unloads, 0);
    call.release();
    await running;
    await eventually(async () => assert.equal(slot.state, 'UNLOADED'));
    assert.equal(log.unloads, 1);
    assert.equal(await slot.use(async (m) => m.id), 2);
    assert.equal(log.loads, 2);
  });

  it('never unloads when the idle time is 0', async () => {
    const { slot, log } = counted({ idleUnloadMs: 0 });
    await slot.use(async () => undefined);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(slot.state, 'READY');
    assert.equal(log.unloads, 0);
  });

  it('retire drains: calls in flight finish, new ones are refused, then it unloads', async () => {
    const { slot, log } = counted();
    const call = held();
    const running = slot.use(call.fn);
    await eventually(async () => assert.equal(slot.state, 'READY'));
    let retired = false;
    const retiring = slot.retire().then(() => (retired = true));
    await assert.rejects(
      slot.use(async () => 0),
      SlotRetiredError,
    );
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(retired, false, 'waits for the call in flight');
    assert.equal(log.unloads, 0);
    call.release();
    assert.equal(await running, 1);
    await retiring;
    assert.equal(log.unloads, 1);
    assert.equal(slot.state, 'UNLOADED');
  });

  it('a failed load leaves FAILED, and the next call tries again', async () => {
    const { slot, log } = counted({ failLoads: 1 });
    await assert.rejects(
      slot.use(async () => 0),
      /load failed/,
    );
    assert.equal(slot.state, 'FAILED');
    assert.equal(await slot.use(async (m) => m.id), 2);
    assert.equal(slot.state, 'READY');
    assert.equal(log.loads, 2);
  });

  it('unload waits for calls in flight and a later call loads afresh', async () => {
    const { slot, log } = counted();
    const call = held();
    const running = slot.use(call.fn);
    await eventually(async () => assert.equal(slot.state, 'READY'));
    const unloading = slot.unload();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(log.unloads, 0);
    call.release();
    await Promise.all([running, unloading]);
    assert.equal(log.unloads, 1);
    assert.equal(await slot.use(async (m) => m.id), 2);
  });
});
