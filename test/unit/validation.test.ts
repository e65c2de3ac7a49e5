import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AppError } from '../../src/errors/index.js';
import { parseInferBody } from '../../src/gateway/validation.js';

const code = (fn: () => unknown) => {
  try {
    fn();
    return 'OK';
  } catch (err) {
    return (err as AppError).code;
  }
};

describe('parseInferBody', () => {
  it('accepts a minimal body and the optional parameters', () => {
    assert.deepEqual(parseInferBody({ input: 'hi' }, 10), { input: 'hi' });
    const full = { input: 'hi', task: 'pos', max_tokens: 5, temperature: 0, model_version: '2' };
    assert.deepEqual(parseInferBody(full, 10), full);
  });

  it('rejects what is not a JSON object', () => {
    assert.equal(
      code(() => parseInferBody(undefined, 10)),
      'UNSUPPORTED_MEDIA_TYPE',
    );
    for (const body of [null, 'x', 3, [], [{ input: 'x' }]])
      assert.equal(
        code(() => parseInferBody(body, 10)),
        'BAD_REQUEST',
      );
  });

  it('names the field that is wrong', () => {
    try {
      parseInferBody({ input: 'x', max_tokens: 'many' }, 10);
      assert.fail('should throw');
    } catch (err) {
      assert.equal((err as AppError).code, 'BAD_REQUEST');
      assert.match((err as AppError).message, /^max_tokens: /);
    }
    try {
      parseInferBody({ input: 'x', inptu: 'y' }, 10);
      assert.fail('should throw');
    } catch (err) {
      assert.match((err as AppError).message, /^inptu: /);
    }
  });

  it('limits the input size with its own code', () => {
    assert.equal(
      code(() => parseInferBody({ input: 'x'.repeat(11) }, 10)),
      'INPUT_TOO_LARGE',
    );
    assert.equal(
      code(() => parseInferBody({ input: 'x'.repeat(10) }, 10)),
      'OK',
    );
  });

  it('rejects out-of-range parameters', () => {
    assert.equal(
      code(() => parseInferBody({ input: 'x', temperature: -1 }, 10)),
      'BAD_REQUEST',
    );
    assert.equal(
      code(() => parseInferBody({ input: 'x', max_tokens: 1.5 }, 10)),
      'BAD_REQUEST',
    );
    assert.equal(
      code(() => parseInferBody({ input: '' }, 10)),
      'BAD_REQUEST',
    );
  });
});
