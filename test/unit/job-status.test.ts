import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jobStatus } from '../../src/gateway/job-status.js';

describe('jobStatus', () => {
  it('maps BullMQ states to the public ones, with their times', () => {
    assert.deepEqual(jobStatus('waiting', {}), { status: 'queued', startedAt: undefined, finishedAt: undefined });
    assert.deepEqual(jobStatus('prioritized', {}).status, 'queued');
    assert.deepEqual(jobStatus('active', { processedOn: 5 }), {
      status: 'running',
      startedAt: 5,
      finishedAt: undefined,
    });
    assert.deepEqual(jobStatus('completed', { processedOn: 5, finishedOn: 9 }), {
      status: 'completed',
      startedAt: 5,
      finishedAt: 9,
    });
    assert.equal(jobStatus('failed', { processedOn: 5, finishedOn: 9, failedReason: '{}' }).status, 'failed');
  });

  it('never shows a running job without a start time, nor a finished one without a finish time', () => {
    // Read at a moment the state and the fields disagree (a stalled job put back, a race).
    assert.deepEqual(jobStatus('active', {}), { status: 'queued', startedAt: undefined, finishedAt: undefined });
    assert.equal(jobStatus('completed', { processedOn: 5 }).status, 'unknown');
    for (const state of ['waiting', 'active', 'completed', 'failed', 'unknown']) {
      for (const job of [
        {},
        { processedOn: 5 },
        { processedOn: 5, finishedOn: 9 },
        { finishedOn: 9, failedReason: 'x' },
      ]) {
        const s = jobStatus(state, job);
        if (s.status === 'running') assert.ok(s.startedAt, `${state} ${JSON.stringify(job)}`);
        if (s.status === 'completed' || s.status === 'failed')
          assert.ok(s.startedAt && s.finishedAt, `${state} ${JSON.stringify(job)}`);
      }
    }
  });

  it('takes the fields when they are further along than the state read before them', () => {
    assert.equal(jobStatus('active', { processedOn: 5, finishedOn: 9 }).status, 'completed');
    assert.equal(jobStatus('waiting', { processedOn: 5, finishedOn: 9, failedReason: 'x' }).status, 'failed');
  });
});
