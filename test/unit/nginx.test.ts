import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  nginxParamsFromConfig,
  type NginxParams,
  parseHostPort,
  parseNginxVersion,
  renderNginxConfig,
} from '../../src/cluster/nginx.js';
import { findNginx, nginxVersion } from '../../src/cluster/preflight.js';
import { ensureSelfSignedCert } from '../../src/cluster/tls.js';
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
    assert.match(renderNginxConfig({ ...params, connPerIp: 40 }), /limit_conn conn_per_ip 40;/);
    assert.match(conf, /limit_conn conn_per_ip 256;/, 'a per-address connection limit by default');
    assert.match(conf, /limit_conn_status 429;/);
    assert.match(conf, /client_header_timeout 5s;/);
    assert.match(conf, /client_body_timeout 5s;/);
    assert.ok(!/\$\{[A-Z_]+\}/.test(conf), 'no placeholder left');
  });

  it('refuses a template placeholder it has no value for, and an empty upstream', () => {
    assert.throws(() => renderNginxConfig(params, 'x ${MYSTERY};'), /no value for \$\{MYSTERY\}/);
    assert.throws(() => renderNginxConfig({ ...params, gateways: [] }), /at least one gateway/);
  });

  it('is accepted by the real nginx (nginx -t)', () => {
    nginxCheck((prefix) => ({ ...params, prefix }));
  });

  it('with TLS: HTTPS with HTTP/2, TLS 1.2+ and HSTS on HOST, plain HTTP on loopback only', () => {
    const config = loadConfig({ HOST: '0.0.0.0', TLS: 'on', TLS_CERT_FILE: '/c.pem', TLS_KEY_FILE: '/k.pem' });
    const p = nginxParamsFromConfig(config, { prefix: '/p', version: [1, 28, 0] });
    assert.deepEqual(p.listen, { host: '127.0.0.1', port: 8788 });
    const conf = renderNginxConfig(p);
    assert.match(conf, /listen 127\.0\.0\.1:8788;\n/);
    assert.match(conf, /listen 0\.0\.0\.0:8443 ssl;\n\s+http2 on;/);
    assert.match(conf, /ssl_protocols TLSv1\.2 TLSv1\.3;/);
    assert.match(conf, /ssl_certificate \/c\.pem;\n\s+ssl_certificate_key \/k\.pem;/);
    assert.match(conf, /add_header Strict-Transport-Security "max-age=\d+" always;/);
    assert.match(conf, /proxy_set_header X-Forwarded-Proto \$scheme;/);
    // An nginx older than 1.25.1 gets the listen flag instead of the http2 directive.
    const old = renderNginxConfig({ ...p, version: [1, 22, 1] });
    assert.match(old, /listen 0\.0\.0\.0:8443 ssl http2;/);
    assert.ok(!/http2 on;/.test(old));
    // Without TLS nothing of it is there, and plain HTTP listens on HOST.
    const plain = renderNginxConfig(nginxParamsFromConfig(loadConfig({ HOST: '0.0.0.0' }), { prefix: '/p' }));
    assert.match(plain, /listen 0\.0\.0\.0:8788;/);
    assert.ok(!/ssl_|listen .* ssl|add_header Strict-Transport/.test(plain));
    assert.throws(
      () => nginxParamsFromConfig(loadConfig({ TLS: 'on' }), { prefix: '/p' }),
      /TLS=on needs TLS_CERT_FILE/,
    );
  });

  it('with TLS and a self-signed certificate, is accepted by the real nginx (nginx -t)', () => {
    nginxCheck((prefix) => {
      const { certFile, keyFile } = ensureSelfSignedCert(prefix);
      const config = loadConfig({ TLS: 'on', TLS_PORT: '8443' });
      const nginx = findNginx(config);
      return nginxParamsFromConfig(config, { prefix, version: nginxVersion(nginx), tlsFiles: { certFile, keyFile } });
    });
  });

  it('re-resolves gateway names with NGINX_RESOLVER, which needs nginx 1.27.3', () => {
    const config = loadConfig({ NGINX_UPSTREAMS: 'gateway:8801', NGINX_RESOLVER: '127.0.0.11', HOST: '0.0.0.0' });
    const p = nginxParamsFromConfig(config, { prefix: '/p', errorLog: 'stderr' });
    const conf = renderNginxConfig(p);
    assert.match(conf, /error_log stderr warn;/);
    assert.match(
      conf,
      /zone skillserve_gateways 1m;\n\s+resolver 127\.0\.0\.11 valid=5s ipv6=off;\n\s+server gateway:8801 max_fails=1 fail_timeout=2s resolve;/,
    );
    assert.throws(() => renderNginxConfig({ ...p, version: [1, 27, 2] }), /NGINX_RESOLVER needs nginx 1\.27\.3/);
    assert.deepEqual(parseHostPort('[::1]:8801'), { host: '[::1]', port: 8801 });
    assert.throws(() => parseHostPort('gateway'), /"gateway" is not host:port/);
    assert.deepEqual(parseNginxVersion('nginx version: nginx/1.22.1'), [1, 22, 1]);
  });
});

/** Renders into a fresh prefix and runs the real nginx's config test on it. */
function nginxCheck(build: (prefix: string) => NginxParams): void {
  const prefix = mkdtempSync(join(tmpdir(), 'skillserve-nginx-'));
  try {
    for (const d of ['logs', 'tmp']) mkdirSync(join(prefix, d));
    const conf = join(prefix, 'nginx.conf');
    writeFileSync(conf, renderNginxConfig(build(prefix)));
    const nginx = findNginx(loadConfig({}));
    execFileSync(nginx, ['-t', '-q', '-p', prefix, '-c', conf, '-e', join(prefix, 'logs', 'error.log')], {
      stdio: 'pipe',
    });
  } finally {
    rmSync(prefix, { recursive: true, force: true });
  }
}
