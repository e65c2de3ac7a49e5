import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { PreflightError } from './preflight.js';

const DAY_MS = 86_400_000;

export interface SelfSigned {
  certFile: string;
  keyFile: string;
  /** True when made now, false when an earlier one still fits. */
  created: boolean;
}

/**
 * A self-signed certificate for local HTTPS (`TLS=on skillserve up`), kept under
 * `<runDir>/tls/`: an ECDSA P-256 key and a 30-day certificate for `localhost`, 127.0.0.1 and
 * `hosts`. One that still covers those names for a day or more is reused, so a client that
 * trusts it (`curl --cacert .run/tls/cert.pem`) keeps working across restarts. Made with the
 * `openssl` command: Node can read certificates but not issue them.
 */
export function ensureSelfSignedCert(runDir: string, hosts: string[] = []): SelfSigned {
  const dir = join(runDir, 'tls');
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const names = [...new Set(['localhost', '127.0.0.1', ...hosts.filter((h) => !['0.0.0.0', '::'].includes(h))])];
  if (existsSync(certFile) && existsSync(keyFile) && stillFits(readFileSync(certFile), names)) {
    return { certFile, keyFile, created: false };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const san = names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '30',
        '-subj',
        '/CN=skillserve local',
        '-addext',
        `subjectAltName=${san}`,
        '-keyout',
        keyFile,
        '-out',
        certFile,
      ],
      { stdio: 'pipe' },
    );
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    throw new PreflightError(
      e.code === 'ENOENT'
        ? 'TLS=on without TLS_CERT_FILE/TLS_KEY_FILE makes a self-signed certificate with `openssl`, which was not found.\n' +
            '  Install it (apt-get install -y openssl), or set TLS_CERT_FILE and TLS_KEY_FILE.'
        : `openssl could not make a self-signed certificate: ${e.stderr?.toString().trim() ?? e.message}`,
    );
  }
  chmodSync(keyFile, 0o600);
  return { certFile, keyFile, created: true };
}

function stillFits(pem: Buffer, names: string[]): boolean {
  try {
    const cert = new X509Certificate(pem);
    if (Date.parse(cert.validTo) - Date.now() < DAY_MS) return false;
    const san = cert.subjectAltName ?? '';
    return names.every((n) => san.includes(isIP(n) ? `IP Address:${n}` : `DNS:${n}`));
  } catch {
    return false;
  }
}
