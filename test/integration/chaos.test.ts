import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { experiments } from '../../chaos/experiments.js';
import { runSuite } from '../../chaos/suite.js';

/**
 * The chaos suite's short profile (`npm run chaos` runs them all): the real cluster on a private
 * Redis and Postgres, steady load, one replica of a skill hung and released, then a dispatcher
 * killed. It asserts what the experiments' hypotheses say — no accepted job lost, no request
 * failed, the hung replica's breaker opened and closed again — never how long anything took.
 */
describe('chaos, short profile (a hung skill replica, a killed dispatcher)', () => {
  it('keeps every accepted job and every request through both faults', async () => {
    const events: string[] = [];
    const outcomes = await runSuite({
      experiments: experiments.filter((e) => e.short),
      faultMs: 4_000,
      concurrency: 6,
      print: (line) => events.push(line),
    });
    assert.deepEqual(
      outcomes.map((o) => o.name),
      ['skill-hang', 'dispatcher-kill'],
    );
    for (const o of outcomes) {
      assert.ok(o.jobsAccepted > 0, `${o.name}: load ran (${JSON.stringify(o.phases)})`);
      assert.equal(o.jobsLost, 0, `${o.name}: accepted jobs lost`);
      for (const c of o.checks) assert.ok(c.ok, `${o.name}: ${c.what} ${c.detail ?? ''}`);
    }
  });
});
