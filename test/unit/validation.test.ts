import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AppError } from '../../src/errors/index.js';
import { normalizeText, parseInferBody } from '../../src/gateway/validation.js';

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

describe('parseInferBody with tensors (Open Inference Protocol)', () => {
  const tensor = { name: 'input', datatype: 'FP32', shape: [2, 2], data: [1, 2, 3, 4] };
  const message = (body: unknown) => {
    try {
      parseInferBody(body, 10);
      return 'OK';
    } catch (err) {
      assert.equal((err as AppError).code, 'BAD_REQUEST');
      return (err as AppError).message;
    }
  };

  it('converts inputs to wire tensors, flat or nested data', () => {
    const body = parseInferBody({ model: 'classifier', inputs: [tensor] }, 10);
    assert.deepEqual(body, {
      model: 'classifier',
      tensors: [{ name: 'input', datatype: 'FP32', shape: [2, 2], fp32Data: [1, 2, 3, 4] }],
    });
    const nested = parseInferBody(
      {
        inputs: [
          {
            ...tensor,
            data: [
              [1, 2],
              [3, 4],
            ],
          },
        ],
      },
      10,
    );
    assert.deepEqual(nested.tensors?.[0]?.fp32Data, [1, 2, 3, 4]);
    const ids = parseInferBody({ inputs: [{ name: 'ids', datatype: 'INT64', shape: [1, 2], data: [7, 8] }] }, 10);
    assert.deepEqual(ids.tensors?.[0]?.int64Data, [7, 8]);
    const flags = parseInferBody({ inputs: [{ name: 'f', datatype: 'BOOL', shape: [2], data: [true, false] }] }, 10);
    assert.deepEqual(flags.tensors?.[0]?.boolData, [true, false]);
  });

  it('takes either input or inputs, not both, not neither', () => {
    assert.match(message({ input: 'x', inputs: [tensor] }), /^inputs: give either "input" \(text\) or "inputs"/);
    assert.match(message({ task: 'x' }), /^input: give either "input" \(text\) or "inputs"/);
    assert.match(message({ inputs: [] }), /^inputs: give at least one tensor/);
  });

  it('names the input whose tensor is wrong', () => {
    assert.match(
      message({ inputs: [{ ...tensor, data: [1, 2, 3] }] }),
      /^input "input": shape \[2,2\] needs 4 values, got 3/,
    );
    assert.match(
      message({ inputs: [{ ...tensor, data: [1, 2, 3, 'x'] }] }),
      /^input "input": data\[3\] is "x", expected a number for FP32/,
    );
    assert.match(
      message({ inputs: [{ ...tensor, datatype: 'INT64', data: [1, 2, 3, 4.5] }] }),
      /^input "input": data\[3\] is 4.5, expected an integer/,
    );
    assert.match(message({ inputs: [{ ...tensor, datatype: 'FLOAT32' }] }), /^inputs.0.datatype \(input "input"\): /);
    assert.match(message({ inputs: [{ ...tensor, shape: [2, -1] }] }), /^inputs.0.shape.1 \(input "input"\): /);
    assert.match(message({ inputs: [{ ...tensor, extra: 1 }] }), /^inputs.0 \(input "input"\): .*extra/);
    assert.match(message({ inputs: [{ datatype: 'FP32', shape: [1], data: [1] }] }), /^inputs.0.name: /);
  });

  it('rejects a model that contradicts the task', () => {
    assert.match(message({ model: 'a', task: 'b', inputs: [tensor] }), /^model: "a" contradicts task "b"/);
    assert.equal(message({ model: 'a', task: 'a', inputs: [tensor] }), 'OK');
  });

  it('refuses non-finite values, and values that overflow the datatype, naming the field', () => {
    // What JSON.parse makes of 1e999 and -1e999.
    const overflow = JSON.parse('[1, 1e999, 3, -1e999]') as number[];
    for (const datatype of ['FP32', 'FP64']) {
      const body = { inputs: [{ ...tensor, datatype, data: overflow }] };
      assert.match(message(body), new RegExp(`^input "input": data\\[1\\] is Infinity, expected a finite number`));
      try {
        parseInferBody(body, 10);
      } catch (err) {
        assert.deepEqual((err as AppError).details, { field: 'inputs.0.data', input: 'input', index: 1 });
      }
    }
    // Finite as a double, infinite as a 32-bit float.
    assert.match(message({ inputs: [{ ...tensor, data: [1, 2, 3, 1e39] }] }), /data\[3\] is 1e\+39/);
    assert.equal(message({ inputs: [{ ...tensor, datatype: 'FP64', data: [1, 2, 3, 1e39] }] }), 'OK');
    assert.equal(message({ inputs: [{ ...tensor, data: [1, 2, 3, 3.4e38] }] }), 'OK');
    assert.match(message({ inputs: [{ ...tensor, datatype: 'INT32', data: [1, 2, 3, Infinity] }] }), /data\[3\]/);
  });
});

describe('text inputs and Unicode normalization', () => {
  it('gives the model NFC: canonically equivalent inputs become the same text', () => {
    const nfc = 'Jos\u00e9 lives in S\u00e3o Paulo';
    const nfd = nfc.normalize('NFD');
    assert.notEqual(nfd, nfc);
    assert.equal(parseInferBody({ input: nfd }, 100).input, nfc);
    assert.equal(parseInferBody({ input: nfc }, 100).input, nfc);
    assert.equal(normalizeText(nfd), nfc);
  });

  it('keeps everything else as sent: no trimming, no case folding, compatibility forms untouched', () => {
    for (const text of ['  Hello  ', 'HELLO', '\ufb01ne', '\u2460'])
      assert.equal(parseInferBody({ input: text }, 100).input, text);
  });

  it('refuses non-finite numbers in every numeric field', () => {
    for (const field of ['max_tokens', 'temperature', 'deadline_ms']) {
      for (const value of [Infinity, -Infinity, NaN]) {
        const err = (() => {
          try {
            parseInferBody({ input: 'x', [field]: value }, 10);
          } catch (e) {
            return e as AppError;
          }
        })();
        assert.equal(err?.code, 'BAD_REQUEST', `${field}=${value}`);
        assert.match(err.message, new RegExp(`^${field}: `));
      }
    }
  });
});
