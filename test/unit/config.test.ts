import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, redactUrl } from '../../src/config/index.js';

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

describe('loadConfig: deployment settings', () => {
  it('puts REDIS_PASSWORD and DATABASE_PASSWORD into their URLs, percent-encoded', () => {
    const c = loadConfig({
      REDIS_URL: 'redis://redis:6379',
      REDIS_PASSWORD: 'p@ss:w/rd%',
      DATABASE_URL: 'postgres://skillserve@postgres:5432/skillserve',
      DATABASE_PASSWORD: 'a b',
    });
    assert.equal(c.REDIS_URL, 'redis://:p%40ss%3Aw%2Frd%25@redis:6379');
    assert.equal(decodeURIComponent(new URL(c.REDIS_URL).password), 'p@ss:w/rd%');
    assert.equal(c.DATABASE_URL, 'postgres://skillserve:a%20b@postgres:5432/skillserve');
  });

  it('never shows a password in an error, and shows a URL without its password', () => {
    assert.throws(
      () => loadConfig({ REDIS_URL: 'http://u:secret@x', OPENAI_API_KEY: '', DATABASE_URL: 'mysql://u:hush@db' }),
      (err: ConfigError) => {
        assert.ok(!/secret|hush/.test(err.message), err.message);
        assert.match(err.message, /REDIS_URL: .*\(got "http:\/\/u:\*\*\*@x"\)/);
        return true;
      },
    );
    assert.equal(redactUrl('redis://:pw@h:6379'), 'redis://:***@h:6379');
  });

  it('wants a TLS certificate with its key, and HTTPS on a port of its own', () => {
    assert.throws(() => loadConfig({ TLS_CERT_FILE: '/c.pem' }), /TLS_CERT_FILE, TLS_KEY_FILE: give both/);
    assert.throws(() => loadConfig({ TLS: 'on', TLS_PORT: '8788' }), /TLS_PORT: must differ from PUBLIC_PORT/);
    assert.throws(() => loadConfig({ TLS: 'yes' }), /TLS: /);
    const c = loadConfig({ TLS: 'on', NGINX_UPSTREAMS: 'gateway:8801, other:8801' });
    assert.equal(c.TLS_PORT, 8443);
    assert.deepEqual(c.NGINX_UPSTREAMS, ['gateway:8801', 'other:8801']);
  });
});
