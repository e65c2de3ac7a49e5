import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.js';

describe('loadConfig', () => {
  it('has working defaults for one machine', () => {
    const c = loadConfig({});
    assert.equal(c.PUBLIC_PORT, 8788);
    assert.equal(c.GATEWAY_COUNT, 2);
    assert.deepEqual(c.SKILLS, ['nlp', 'onnx']);
    assert.deepEqual(c.ONNX_MODELS, []);
    assert.equal(c.MODEL_REPOSITORY, 'models');
    assert.equal(c.HOST, '127.0.0.1');
    assert.ok(Object.isFrozen(c));
  });

  it('parses numbers and lists from strings', () => {
    const c = loadConfig({ GATEWAY_COUNT: '4', SKILLS: ' nlp , onnx ', PUBLIC_PORT: '9000' });
    assert.equal(c.GATEWAY_COUNT, 4);
    assert.deepEqual(c.SKILLS, ['nlp', 'onnx']);
    assert.equal(c.PUBLIC_PORT, 9000);
  });

  it('names every wrong variable, what it expected and what it got', () => {
    assert.throws(
      () => loadConfig({ GATEWAY_COUNT: '0', PUBLIC_PORT: '70000', REDIS_URL: 'http://x', LOG_LEVEL: 'loud' }),
      (err: ConfigError) => {
        assert.ok(err instanceof ConfigError);
        const text = err.message;
        assert.match(text, /GATEWAY_COUNT: .*>=1.* \(got "0"\)/);
        assert.match(text, /PUBLIC_PORT: .*<=65535.* \(got "70000"\)/);
        assert.match(text, /REDIS_URL: .* \(got "http:\/\/x"\)/);
        assert.match(text, /LOG_LEVEL: .* \(got "loud"\)/);
        assert.equal(err.problems.length, 4);
        return true;
      },
    );
  });

  it('rejects a key prefix that could break key names', () => {
    assert.throws(() => loadConfig({ KEY_PREFIX: 'a:b' }), /KEY_PREFIX: letters, digits/);
  });

  it('adds the openai skill when an upstream is configured, unless SKILLS is explicit', () => {
    assert.deepEqual(loadConfig({ OPENAI_BASE_URL: 'http://127.0.0.1:8000/v1' }).SKILLS, ['nlp', 'onnx', 'openai']);
    assert.deepEqual(loadConfig({ OPENAI_BASE_URL: 'http://127.0.0.1:8000/v1', SKILLS: 'nlp' }).SKILLS, ['nlp']);
    assert.throws(() => loadConfig({ SKILLS: 'nlp,openai' }), /OPENAI_BASE_URL: the openai skill .* needs the URL/);
    assert.throws(() => loadConfig({ OPENAI_BASE_URL: 'ftp://x' }), /OPENAI_BASE_URL: .* \(got "ftp:\/\/x"\)/);
  });

  it('treats an empty variable as unset', () => {
    assert.equal(loadConfig({ PUBLIC_PORT: '' }).PUBLIC_PORT, 8788);
  });
});
