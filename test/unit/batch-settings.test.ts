import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { batchSettings, workerConcurrency } from '../../src/queue/batch-settings.js';

describe('batch settings', () => {
  it('defaults: 32 jobs, 2 ms, 2 batches in flight, no overrides', () => {
    const c = loadConfig({});
    assert.equal(c.BATCH_MAX_SIZE, 32);
    assert.equal(c.BATCH_MAX_DELAY_MS, 2);
    assert.equal(c.BATCH_MAX_IN_FLIGHT, 2);
    assert.deepEqual(c.BATCH_OVERRIDES, {});
    assert.deepEqual(batchSettings(c, 'nlp'), {
      maxBatchSize: 32,
      maxQueueDelayMs: 2,
      preferredBatchSizes: [],
      maxInFlightBatches: 2,
      flushWhenIdle: true,
    });
  });

  it('parses per-skill overrides, with or without a delay', () => {
    const c = loadConfig({ BATCH_OVERRIDES: 'onnx=16:5, nlp=1,llm=4:0.5' });
    assert.deepEqual(c.BATCH_OVERRIDES, {
      onnx: { maxBatchSize: 16, maxQueueDelayMs: 5 },
      nlp: { maxBatchSize: 1 },
      llm: { maxBatchSize: 4, maxQueueDelayMs: 0.5 },
    });
  });

  it('names a malformed override and what it expected', () => {
    for (const bad of ['onnx', 'onnx=0', 'onnx=16:x', 'Onnx=4', 'onnx=4:5:6']) {
      assert.throws(
        () => loadConfig({ BATCH_OVERRIDES: bad }),
        (err: ConfigError) =>
          err instanceof ConfigError &&
          /BATCH_OVERRIDES: .*is not skill=maxBatchSize\[:maxQueueDelayMs\]/.test(err.message),
        bad,
      );
    }
    assert.throws(() => loadConfig({ BATCH_MAX_DELAY_MS: '-1' }), /BATCH_MAX_DELAY_MS/);
  });

  it("takes the model's own settings when the cluster does not override them", () => {
    const c = loadConfig({});
    const s = batchSettings(c, 'onnx', { maxBatchSize: 8, maxQueueDelayMs: 5, preferredBatchSizes: [8, 4, 4] });
    assert.deepEqual(s, {
      maxBatchSize: 8,
      maxQueueDelayMs: 5,
      preferredBatchSizes: [4, 8],
      maxInFlightBatches: 2,
      flushWhenIdle: true,
    });
  });

  it('caps a declared size at BATCH_MAX_SIZE, so BATCH_MAX_SIZE=1 turns batching off everywhere', () => {
    const s = batchSettings(loadConfig({ BATCH_MAX_SIZE: '16' }), 'onnx', {
      maxBatchSize: 64,
      preferredBatchSizes: [8, 32],
    });
    assert.equal(s.maxBatchSize, 16);
    assert.deepEqual(s.preferredBatchSizes, [8], 'preferred sizes above the size are dropped');
    assert.equal(batchSettings(loadConfig({ BATCH_MAX_SIZE: '1' }), 'onnx', { maxBatchSize: 64 }).maxBatchSize, 1);
  });

  it("lets a per-skill override win, but never above the model's own maximum", () => {
    const c = loadConfig({ BATCH_OVERRIDES: 'onnx=48:7,nlp=64' });
    const onnx = batchSettings(c, 'onnx', { maxBatchSize: 16, maxQueueDelayMs: 1 });
    assert.equal(onnx.maxBatchSize, 16);
    assert.equal(onnx.maxQueueDelayMs, 7);
    assert.equal(batchSettings(c, 'nlp').maxBatchSize, 64, 'above BATCH_MAX_SIZE when named explicitly');
  });

  it('ignores declared values that are not sensible numbers (the catalogue is written by any skill)', () => {
    const c = loadConfig({});
    const s = batchSettings(c, 'x', {
      maxBatchSize: -3,
      maxQueueDelayMs: Number.NaN,
      preferredBatchSizes: [0, 2.5, 4] as number[],
    });
    assert.deepEqual(s, {
      maxBatchSize: 32,
      maxQueueDelayMs: 2,
      preferredBatchSizes: [4],
      maxInFlightBatches: 2,
      flushWhenIdle: true,
    });
  });

  it('gives the worker enough concurrency for full in-flight batches plus one forming', () => {
    const c = loadConfig({});
    assert.equal(workerConcurrency(batchSettings(c, 'nlp'), 64), 96);
    assert.equal(workerConcurrency(batchSettings(c, 'nlp', { maxBatchSize: 4 }), 64), 64);
    assert.equal(workerConcurrency(batchSettings(loadConfig({ BATCH_MAX_SIZE: '1' }), 'nlp'), 64), 64);
  });
});
