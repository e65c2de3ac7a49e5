import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { requestStart } from '../../src/gateway/middleware/request-context.js';

describe('requestStart: when a request reached the cluster (X-Request-Start from nginx)', () => {
  const now = 1_790_000_000_000;

  it("reads nginx's t=<epoch seconds with ms>", () => {
    assert.equal(requestStart('t=1790000000.000', now), now);
    assert.equal(requestStart('t=1789999999.250', now), now - 750);
    assert.equal(requestStart(['t=1789999999.5', 't=1'], now), now - 500);
  });

  it('falls back to now when the header is absent, malformed or implausible', () => {
    for (const header of [
      undefined,
      '',
      '1789999999.250',
      't=abc',
      't=1789999999.250; drop table',
      't=-1789999999',
      't=1790000001.000', // in the future
      't=1789999000.000', // more than a minute ago
    ]) {
      assert.equal(requestStart(header, now), now, String(header));
    }
  });
});
