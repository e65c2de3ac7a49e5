import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chatMessages } from '../../src/skills/backends/openai/input.js';
import {
  retryAfterMs,
  statusError,
  transportError,
  upstreamMessage,
} from '../../src/skills/backends/openai/upstream-errors.js';
import { normaliseBaseUrl } from '../../src/skills/backends/openai/upstream.js';

describe('openai: Retry-After', () => {
  const h = (init: Record<string, string>) => new Headers(init);

  it('reads seconds, OpenAI retry-after-ms and HTTP dates', () => {
    assert.equal(retryAfterMs(h({ 'retry-after': '2' })), 2_000);
    assert.equal(retryAfterMs(h({ 'retry-after': '0.5' })), 500);
    assert.equal(retryAfterMs(h({ 'retry-after-ms': '150', 'retry-after': '9' })), 150);
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(retryAfterMs(h({ 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }), now), 5_000);
    assert.equal(retryAfterMs(h({ 'retry-after': 'Wed, 31 Dec 2025 23:00:00 GMT' }), now), 0);
  });

  it('ignores an absent or unreadable header', () => {
    assert.equal(retryAfterMs(h({})), undefined);
    assert.equal(retryAfterMs(h({ 'retry-after': 'soon' })), undefined);
    assert.equal(retryAfterMs(h({ 'retry-after': '-3' })), undefined);
  });
});

describe('openai: upstream errors', () => {
  it('finds the message in the shapes OpenAI, vLLM and Ollama use', () => {
    assert.equal(upstreamMessage('{"error":{"message":"a"}}'), 'a');
    assert.equal(upstreamMessage('{"object":"error","message":"b"}'), 'b');
    assert.equal(upstreamMessage('{"error":"c"}'), 'c');
    assert.equal(upstreamMessage('<html>'), undefined);
    assert.equal(upstreamMessage(JSON.stringify({ error: 'x'.repeat(1000) }))!.length, 300);
  });

  it('maps statuses to stable codes, with retryAfterS where a wait was asked', () => {
    const code = (s: number) => statusError(s, '', 'm').code;
    assert.deepEqual([400, 401, 403, 404, 408, 413, 422, 429, 500, 502, 503, 504, 418].map(code), [
      'BAD_REQUEST',
      'SKILL_ERROR',
      'SKILL_ERROR',
      'SKILL_ERROR',
      'SKILL_TIMEOUT',
      'INPUT_TOO_LARGE',
      'BAD_REQUEST',
      'OVERLOADED',
      'SKILL_ERROR',
      'SKILL_UNAVAILABLE',
      'SKILL_UNAVAILABLE',
      'SKILL_UNAVAILABLE',
      'SKILL_ERROR',
    ]);
    assert.deepEqual(statusError(429, '', 'm', 7).details, { retryAfterS: 7 });
    assert.equal(statusError(429, '', 'm').details, undefined);
  });

  it('a refused connection is SKILL_UNAVAILABLE, our own abort SKILL_TIMEOUT', () => {
    const refused = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    assert.deepEqual(transportError(refused, false), {
      code: 'SKILL_UNAVAILABLE',
      message: 'the upstream model is not reachable (ECONNREFUSED)',
    });
    assert.equal(transportError(new Error('aborted'), true).code, 'SKILL_TIMEOUT');
  });
});

describe('openai: chat input', () => {
  it('plain text is one user message, even when it starts with "["', () => {
    assert.deepEqual(chatMessages('hi'), { ok: true, messages: [{ role: 'user', content: 'hi' }] });
    assert.deepEqual(chatMessages('[draft] hi'), { ok: true, messages: [{ role: 'user', content: '[draft] hi' }] });
    assert.deepEqual(chatMessages('[1, 2]'), { ok: true, messages: [{ role: 'user', content: '[1, 2]' }] });
  });

  it('a JSON array of role/content objects is the conversation', () => {
    const conv = [
      { role: 'system', content: 's' },
      { role: 'user', content: 'u' },
      { role: 'assistant', content: 'a' },
      { role: 'user', content: 'u2' },
    ];
    assert.deepEqual(chatMessages(JSON.stringify(conv)), { ok: true, messages: conv });
  });

  it('a conversation with a bad message is BAD_REQUEST naming it', () => {
    const bad = (v: unknown) => {
      const r = chatMessages(JSON.stringify(v));
      assert.ok(!r.ok, JSON.stringify(v));
      return r.error.message;
    };
    assert.match(bad([{ role: 'user', content: 1 }]), /messages\[0\]\.content must be a string/);
    assert.match(bad([{ role: 'user', content: 'a' }, { role: 'tool' }]), /messages\[1\]\.role/);
    assert.match(bad([{ role: 'user', content: 'a', name: 'x' }]), /unknown fields: name/);
    assert.match(bad([{ role: 'system', content: 'a' }]), /at least one "user"/);
    assert.match(bad([]), /empty/);
  });
});

describe('openai: base URL', () => {
  it('accepts the root with or without /v1 and trailing slashes', () => {
    assert.equal(normaliseBaseUrl('http://h:8000'), 'http://h:8000/v1');
    assert.equal(normaliseBaseUrl('http://h:8000/v1/'), 'http://h:8000/v1');
    assert.equal(normaliseBaseUrl('https://api.example.com/openai/v1'), 'https://api.example.com/openai/v1');
  });
});
