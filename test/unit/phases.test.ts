import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PhaseClock, serverTiming } from '../../src/gateway/phases.js';
import { parseServerTiming } from '../../bench/path-phases.js';

describe('request phases', () => {
  it('writes Server-Timing in phase order, ms with 2 decimals', () => {
    assert.equal(serverTiming({ total: 5, admit: 0.456, auth: 0.1 }), 'auth;dur=0.10, admit;dur=0.46, total;dur=5.00');
  });

  it('reads back what it writes', () => {
    assert.deepEqual(parseServerTiming(serverTiming({ auth: 0.25, queue: 1.5, total: 3 })), {
      auth: 0.25,
      queue: 1.5,
      total: 3,
    });
  });

  it('gives `return` what the total leaves after the other phases of a queued request', () => {
    const clock = new PhaseClock(0);
    clock.ms.auth = 1;
    clock.ms.admit = 1;
    clock.ms.enqueue = 1;
    clock.set('queue', 1);
    clock.set('skill', 1);
    const ms = clock.finish();
    assert.ok(ms.total! >= 5);
    assert.ok(Math.abs(ms.return! - (ms.total! - 5)) < 1e-9);
  });

  it('has no `return` when the request was not queued', () => {
    const clock = new PhaseClock();
    clock.mark('admit');
    assert.equal(clock.finish().return, undefined);
  });
});
