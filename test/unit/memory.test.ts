import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pgToAppError } from '../../src/db/pg-errors.js';
import { AppError } from '../../src/errors/index.js';
import { combineConfidence, combineDuplicates } from '../../src/memory/combine.js';
import { cursorScope, decodeCursor, encodeCursor } from '../../src/memory/cursor.js';
import { DEFAULT_EXTRACTED_CONFIDENCE, triplesFromSkillOutput } from '../../src/memory/extraction.js';
import { parseAssertBody, parseRecallQuery, textProblem, tripleLimits } from '../../src/memory/validation.js';

const field = (fn: () => unknown): string => {
  try {
    fn();
    return 'OK';
  } catch (err) {
    assert.ok(err instanceof AppError, String(err));
    return `${err.code}:${String(err.details?.field)}`;
  }
};

describe('confidence combination', () => {
  it('treats assertions as independent evidence', () => {
    assert.ok(Math.abs(combineConfidence(0.9, 0.5) - 0.95) < 1e-12);
    assert.equal(combineConfidence(0.3, 0), 0.3);
    assert.equal(combineConfidence(1, 0.2), 1);
    assert.equal(combineConfidence(0, 0), 0);
    for (let i = 0; i < 1000; i++) {
      const [a, b] = [Math.random(), Math.random()];
      const c = combineConfidence(a, b);
      assert.ok(c >= Math.max(a, b) - 1e-15 && c <= 1, `${a} ⊕ ${b} = ${c}`);
      assert.ok(Math.abs(c - combineConfidence(b, a)) < 1e-15, 'order does not matter');
    }
  });

  it('folds repeats of a request, keeping first-appearance order and the last source', () => {
    const t = (object: string, confidence: number, source = 's') => ({
      subject: 'a',
      verb: 'b',
      object,
      confidence,
      source,
    });
    const out = combineDuplicates([t('x', 0.5, 'one'), t('y', 0.2), t('x', 0.5, 'two'), t('X', 0.1)]);
    assert.deepEqual(
      out.map((o) => [o.object, o.confidence, o.assertions, o.source]),
      [
        ['x', 0.75, 2, 'two'],
        ['y', 0.2, 1, 's'],
        ['X', 0.1, 1, 's'],
      ],
    );
    // Field boundaries matter: ("ab","c") and ("a","bc") are different triples.
    const tricky = combineDuplicates([
      { subject: 'ab', verb: 'c', object: 'd', confidence: 1, source: '' },
      { subject: 'a', verb: 'bc', object: 'd', confidence: 1, source: '' },
    ]);
    assert.equal(tricky.length, 2);
  });
});

describe('memory validation', () => {
  const opts = { maxBatch: 3, defaultSource: 'api' };

  it('counts characters as code points, as Postgres does', () => {
    assert.equal(textProblem('🙂'.repeat(tripleLimits.subject), tripleLimits.subject), undefined);
    assert.match(textProblem('🙂'.repeat(tripleLimits.subject + 1), tripleLimits.subject)!, /at most 256/);
    assert.match(textProblem('a\u0000', 10)!, /NUL/);
    assert.match(textProblem('\udc00x', 10)!, /lone surrogate/);
    assert.match(textProblem(' \t\n', 10)!, /whitespace/);
    assert.equal(textProblem(" '; DROP TABLE x; -- ", 30), undefined, 'kept as given');
  });

  it('accepts one triple or a batch, with defaults', () => {
    assert.deepEqual(parseAssertBody({ subject: 's', verb: 'v', object: 'o' }, opts), [
      { subject: 's', verb: 'v', object: 'o', confidence: 1, source: 'api' },
    ]);
    const batch = parseAssertBody(
      { triples: [{ subject: ' s ', verb: 'v', object: 'o', confidence: 0, source: 'chat' }] },
      opts,
    );
    assert.deepEqual(batch, [{ subject: ' s ', verb: 'v', object: 'o', confidence: 0, source: 'chat' }]);
  });

  it('names the failing field, with the item index in a batch', () => {
    const ok = { subject: 's', verb: 'v', object: 'o' };
    assert.equal(
      field(() => parseAssertBody({ ...ok, confidence: 2 }, opts)),
      'BAD_REQUEST:confidence',
    );
    assert.equal(
      field(() => parseAssertBody({ triples: [ok, { ...ok, verb: 1 }] }, opts)),
      'BAD_REQUEST:triples[1].verb',
    );
    assert.equal(
      field(() => parseAssertBody({ triples: [ok, ok, ok, ok] }, opts)),
      'BAD_REQUEST:triples',
    );
    assert.equal(
      field(() => parseAssertBody({ ...ok, id: 5 }, opts)),
      'BAD_REQUEST:id',
    );
    assert.equal(
      field(() => parseAssertBody(undefined, opts)),
      'UNSUPPORTED_MEDIA_TYPE:undefined',
    );
  });

  it('parses recall parameters, capping the limit', () => {
    assert.deepEqual(parseRecallQuery({}, { maxPage: 100 }), { filter: {}, limit: 100 });
    assert.deepEqual(parseRecallQuery({ subject: 'a', limit: '500', min_confidence: '0.25' }, { maxPage: 100 }), {
      filter: { subject: 'a' },
      limit: 100,
      minConfidence: 0.25,
    });
    assert.equal(
      field(() => parseRecallQuery({ verb: ['a', 'b'] }, { maxPage: 5 })),
      'BAD_REQUEST:verb',
    );
    assert.equal(
      field(() => parseRecallQuery({ sort: 'id' }, { maxPage: 5 })),
      'BAD_REQUEST:sort',
    );
  });
});

describe('memory cursor', () => {
  const position = { confidence: 0.5695327899999998, updatedAtUs: '1795332785836330', id: '9007199254740993' };
  const scope = cursorScope('tenant', { subject: 'a' });

  it('round-trips a position exactly (float, microseconds, ids beyond 2^53)', () => {
    assert.deepEqual(decodeCursor(encodeCursor(position, scope), scope), position);
  });

  it('refuses a cursor of another query or tenant, or a tampered one', () => {
    const cursor = encodeCursor(position, scope);
    assert.equal(
      field(() => decodeCursor(cursor, cursorScope('tenant', { subject: 'b' }))),
      'BAD_REQUEST:cursor',
    );
    assert.equal(
      field(() => decodeCursor(cursor, cursorScope('other', { subject: 'a' }))),
      'BAD_REQUEST:cursor',
    );
    assert.notEqual(cursorScope('t', { subject: 'a' }), cursorScope('t', { verb: 'a' }));
    assert.notEqual(cursorScope('t', {}), cursorScope('t', { minConfidence: 0.5 }));
    for (const bad of ['', '!!', 'e30', `x${cursor}`, cursor.slice(1), cursor.slice(0, -4)]) {
      assert.equal(
        field(() => decodeCursor(bad, scope)),
        'BAD_REQUEST:cursor',
        bad,
      );
    }
  });
});

describe('triples from the skill output', () => {
  it('reads the triples task shape and a few likely variants', () => {
    const expected = [{ subject: 'hermana', verb: 'vive_en', object: 'Madrid', confidence: 0.9 }];
    assert.deepEqual(triplesFromSkillOutput({ task: 'triples', triples: expected })?.triples, expected);
    assert.deepEqual(
      triplesFromSkillOutput([{ s: 'hermana', predicate: 'vive_en', o: 'Madrid', score: 0.9 }])?.triples,
      expected,
    );
    assert.deepEqual(triplesFromSkillOutput(JSON.stringify({ facts: expected }))?.triples, expected);
    assert.equal(
      triplesFromSkillOutput({ triples: [{ subject: 'a', verb: 'b', object: 'c' }] })?.triples[0]?.confidence,
      DEFAULT_EXTRACTED_CONFIDENCE,
    );
  });

  it('skips unusable items and reports why; no list at all is undefined', () => {
    const out = triplesFromSkillOutput({
      triples: [
        { subject: 'a', verb: 'b', object: 'c' },
        null,
        { subject: '', verb: 'b', object: 'c' },
        { subject: 'a', verb: 'b', object: 'c', confidence: 3 },
      ],
    });
    assert.equal(out?.triples.length, 1);
    assert.deepEqual(
      out?.skipped.map((s) => s.index),
      [1, 2, 3],
    );
    assert.equal(triplesFromSkillOutput({ task: 'triples' }), undefined);
    assert.equal(triplesFromSkillOutput('not json'), undefined);
    assert.equal(triplesFromSkillOutput(undefined), undefined);
  });
});

describe('pg errors to AppError', () => {
  it('maps connection trouble and timeouts to DATABASE_UNAVAILABLE', () => {
    for (const err of [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      new Error('Connection terminated unexpectedly'),
      new Error('timeout exceeded when trying to connect'),
      new Error('Query read timeout'),
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
      Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }),
      Object.assign(new Error('connection failure'), { code: '08006' }),
      new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })]),
    ]) {
      const mapped = pgToAppError(err);
      assert.equal(mapped.code, 'DATABASE_UNAVAILABLE', err.message);
      assert.equal(mapped.message, 'The database is not reachable.');
    }
  });

  it('maps a named constraint to BAD_REQUEST naming the field, and hides driver text', () => {
    const err = Object.assign(new Error('new row for relation "triples" violates check constraint'), {
      code: '23514',
      constraint: 'triples_confidence_range',
    });
    const mapped = pgToAppError(err, { triples_confidence_range: 'confidence' });
    assert.equal(mapped.code, 'BAD_REQUEST');
    assert.equal(mapped.details?.field, 'confidence');
    assert.ok(!mapped.message.includes('relation'));
    const other = pgToAppError(Object.assign(new Error('syntax error at or near "DROP"'), { code: '42601' }));
    assert.equal(other.code, 'INTERNAL');
    assert.ok(!other.message.includes('DROP'));
  });
});
