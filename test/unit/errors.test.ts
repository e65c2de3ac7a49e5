import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { AppError, errorCatalogue } from '../../src/errors/index.js';
import { decodeFailure, encodeFailure } from '../../src/queue/job.js';
import { fromGrpcError, fromItemError } from '../../src/skills/grpc-errors.js';

describe('error catalogue', () => {
  it('gives every code a 4xx/5xx status and a message', () => {
    for (const [code, { status: s, message }] of Object.entries(errorCatalogue)) {
      assert.ok(s >= 400 && s < 600, code);
      assert.ok(message.length > 0, code);
    }
  });

  it('AppError serialises and rebuilds with its code', () => {
    const e = new AppError('RATE_LIMITED', 'slow down', { limit: 10 });
    assert.equal(e.status, 429);
    assert.deepEqual(AppError.from(JSON.parse(JSON.stringify(e))).toJSON(), e.toJSON());
    assert.equal(AppError.from({ code: 'MADE_UP' }).code, 'INTERNAL');
    assert.equal(AppError.from('nonsense').code, 'INTERNAL');
  });

  it('a job failure keeps its code through BullMQ', () => {
    const failure = encodeFailure(new AppError('SKILL_UNAVAILABLE', 'nlp: gone'));
    assert.equal(failure.name, 'UnrecoverableError');
    const back = decodeFailure(failure.message);
    assert.equal(back.code, 'SKILL_UNAVAILABLE');
    assert.equal(back.message, 'nlp: gone');
    assert.equal(decodeFailure('plain text').code, 'SKILL_ERROR');
    assert.equal(decodeFailure(encodeFailure(new Error('boom')).message).code, 'SKILL_ERROR');
  });
});

describe('gRPC status → AppError, at the client boundary', () => {
  const cases: [status, string][] = [
    [status.UNAVAILABLE, 'SKILL_UNAVAILABLE'],
    [status.DEADLINE_EXCEEDED, 'SKILL_TIMEOUT'],
    [status.INVALID_ARGUMENT, 'BAD_REQUEST'],
    [status.RESOURCE_EXHAUSTED, 'OVERLOADED'],
    [status.INTERNAL, 'SKILL_ERROR'],
    [status.PERMISSION_DENIED, 'SKILL_ERROR'],
  ];
  for (const [s, code] of cases) {
    it(`${status[s]} → ${code}`, () => {
      assert.equal(fromGrpcError({ code: s, details: 'd' }, 'nlp').code, code);
    });
  }

  it('keeps the details of INVALID_ARGUMENT (about the input) and drops the others (about the model)', () => {
    assert.equal(
      fromGrpcError({ code: status.INVALID_ARGUMENT, details: 'input "x": wrong shape' }, 'onnx').message,
      'input "x": wrong shape',
    );
    assert.ok(
      !fromGrpcError({ code: status.INTERNAL, details: '/models/secret/path.onnx' }, 'onnx').message.includes(
        '/models',
      ),
    );
  });

  it('item errors keep known codes only', () => {
    assert.equal(fromItemError({ code: 'UNKNOWN_TASK', message: 'm' }, 'nlp').code, 'UNKNOWN_TASK');
    assert.equal(fromItemError({ code: 'WEIRD', message: 'm' }, 'nlp').code, 'SKILL_ERROR');
  });

  it("item errors keep the skill's details, and a retryAfterS survives the job's JSON round trip", () => {
    const e = fromItemError({ code: 'OVERLOADED', message: 'busy', detailsJson: '{"retryAfterS":12}' }, 'openai');
    assert.equal(e.retryAfterS, 12);
    assert.deepEqual(e.details, { retryAfterS: 12, skill: 'openai' });
    const back = AppError.from(JSON.parse(JSON.stringify(e.toJSON())));
    assert.equal(back.code, 'OVERLOADED');
    assert.equal(back.retryAfterS, 12);
    assert.equal(
      fromItemError({ code: 'BAD_REQUEST', message: 'm', detailsJson: 'not json' }, 'x').retryAfterS,
      undefined,
    );
  });
});
