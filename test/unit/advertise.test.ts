import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { describe, it } from 'node:test';
import { probeTarget } from '../../src/cluster/probe.js';
import { loadConfig } from '../../src/config/index.js';
import { advertisedHost, hostPort } from '../../src/skills/advertise.js';

const nic = (address: string, internal = false, family: 'IPv4' | 'IPv6' = 'IPv4'): NetworkInterfaceInfo =>
  family === 'IPv4'
    ? { address, family, internal, netmask: '', mac: '', cidr: null }
    : { address, family, internal, netmask: '', mac: '', cidr: null, scopeid: 0 };

describe('the address a skill announces', () => {
  it('is SKILL_ADVERTISE_HOST when set, else HOST when it is a real address', () => {
    assert.equal(advertisedHost(loadConfig({ HOST: '0.0.0.0', SKILL_ADVERTISE_HOST: '10.1.2.3' })), '10.1.2.3');
    assert.equal(advertisedHost(loadConfig({})), '127.0.0.1');
  });

  it('is the first non-internal IPv4 address when HOST is a wildcard (a container or pod)', () => {
    const interfaces = { lo: [nic('127.0.0.1', true)], eth0: [nic('fe80::1', false, 'IPv6'), nic('172.18.0.5')] };
    assert.equal(advertisedHost(loadConfig({ HOST: '0.0.0.0' }), interfaces), '172.18.0.5');
    assert.throws(
      () => advertisedHost(loadConfig({ HOST: '::' }), { lo: [nic('127.0.0.1', true)] }),
      /set SKILL_ADVERTISE_HOST/,
    );
  });

  it('puts IPv6 literals in brackets', () => {
    assert.equal(hostPort('fd00::5', 50051), '[fd00::5]:50051');
    assert.equal(hostPort('skill-nlp', 50051), 'skill-nlp:50051');
  });
});

describe('skillserve probe arguments', () => {
  const config = loadConfig({ HOST: '0.0.0.0', METRICS_PORT: '9464', SKILL_PORT: '50051' });

  it('checks the admin port readiness by default, and gRPC health on the skill port', () => {
    assert.deepEqual(probeTarget(config, []), {
      kind: 'http',
      host: '127.0.0.1',
      port: 9464,
      path: '/readyz',
      timeoutMs: 2000,
    });
    assert.deepEqual(probeTarget(config, ['grpc', '--timeout-ms', '500']), {
      kind: 'grpc',
      host: '127.0.0.1',
      port: 50051,
      path: '',
      timeoutMs: 500,
    });
    assert.equal(probeTarget(config, ['--path', '/healthz', '--port', '8801']).port, 8801);
  });

  it('refuses what it cannot check', () => {
    assert.throws(() => probeTarget(loadConfig({}), []), /METRICS_PORT is 0 .* give --port/);
    assert.throws(() => probeTarget(config, ['tcp']), /unknown probe "tcp"/);
    assert.throws(() => probeTarget(config, ['--path', 'readyz']), /--path must start with/);
    assert.throws(() => probeTarget(config, ['--port', '99999']), /--port must be a port number/);
  });
});
