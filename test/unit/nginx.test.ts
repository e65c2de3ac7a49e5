import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { renderNginxConfig } from '../../src/cluster/nginx.js';
import { findNginx } from '../../src/cluster/preflight.js';
import { loadConfig } from '../../src/config/index.js';

const params = {
  prefix: '/tmp/x',
  listen: { host: '127.0.0.1', port: 8788 },
  status: { host: '127.0.0.1', port: 8789 },
  gateways: [
    { host: '127.0.0.1', port: 8801 },
    { host: '127.0.0.1', port: 8802 },
  ],
  clientMaxBodyBytes: 1024 * 1024,
  proxyReadTimeoutS: 20,
  ratePerIp: 1000,
  burstPerIp: 2000,
};

describe('nginx config', () => {
  it('renders upstreams, least_conn, keepalive and the limits', () => {
    const conf = renderNginxConfig(params);
    assert.match(conf, /least_conn;/);
    assert.match(conf, /server 127\.0\.0\.1:8801 max_fails=1 fail_timeout=2s;\n\s+server 127\.0\.0\.1:8802/);
    assert.match(conf, /listen 127\.0\.0\.1:8788;/);
    // stub_status only on its own listener, for the exporter.
    assert.match(conf, /listen 127\.0\.0\.1:8789;\n\s+location = \/stub_status \{\n\s+stub_status;/);
    assert.equal(conf.match(/stub_status;/g)?.length, 1);
    assert.match(conf, /client_max_body_size 1024k;/);
    assert.match(conf, /proxy_read_timeout 20s;/);
    assert.match(conf, /proxy_next_upstream error timeout/);
    assert.match(conf, /limit_req_zone \$binary_remote_addr zone=per_ip:10m rate=1000r\/s;/);
    assert.match(conf, /limit_req zone=per_ip burst=2000 nodelay;/);
    assert.ok(!/\$\{[A-Z_]+\}/.test(conf), 'no placeholder left');
  });

  it('refuses a template placeholder it has no value for, and an empty upstream', () => {
    assert.throws(() => renderNginxConfig(params, 'x ${MYSTERY};'), /no value for \$\{MYSTERY\}/);
    assert.throws(() => renderNginxConfig({ ...params, gateways: [] }), /at least one gateway/);
  });

  it('is accepted by the real nginx (nginx -t)', () => {
    const prefix = mkdtempSync(join(tmpdir(), 'skillserve-nginx-'));
    try {
      for (const d of ['logs', 'tmp']) mkdirSync(join(prefix, d));
      const conf = join(prefix, 'nginx.conf');
      writeFileSync(conf, renderNginxConfig({ ...params, prefix }));
      const nginx = findNginx(loadConfig({}));
      execFileSync(nginx, ['-t', '-q', '-p', prefix, '-c', conf, '-e', join(prefix, 'logs', 'error.log')], {
        stdio: 'pipe',
      });
    } finally {
      rmSync(prefix, { recursive: true, force: true });
    }
  });
});
