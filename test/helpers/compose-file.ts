import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ROOT } from './k8s-manifests.js';

export const COMPOSE_FILE = join(ROOT, 'docker-compose-ml.yml');

/** The variables docker-compose-ml.yml requires, with throwaway values (and files) for a check. */
export function composeSecrets(dir: string): Record<string, string> {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  writeFileSync(cert, 'not a certificate: docker-compose config only checks the file is named\n');
  writeFileSync(key, 'not a key\n');
  return {
    POSTGRES_PASSWORD: 'pg-secret',
    REDIS_PASSWORD: 'redis-secret',
    GRAFANA_ADMIN_PASSWORD: 'grafana-secret',
    TLS_CERT_FILE: cert,
    TLS_KEY_FILE: key,
  };
}

/**
 * `docker-compose config`: Debian's docker-compose validates the file against the Compose
 * Specification's JSON schema, interpolates variables and prints the result, without an engine.
 */
export function composeConfig(env: Record<string, string>): { status: number; stdout: string; stderr: string } {
  // Only what is given: variables of the test process (a stray POSTGRES_PASSWORD) must not leak in.
  const clean = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env };
  const res = spawnSync('docker-compose', ['-f', COMPOSE_FILE, '--project-directory', ROOT, 'config'], {
    env: clean,
    encoding: 'utf8',
  });
  if (res.error) {
    throw new Error(`docker-compose could not run (${res.error.message}); scripts/setup.sh installs it from Debian`);
  }
  return { status: res.status ?? -1, stdout: res.stdout, stderr: res.stderr };
}

export interface ComposeModel {
  services: Record<string, any>;
  networks?: Record<string, any>;
  volumes?: Record<string, any>;
  secrets?: Record<string, any>;
}

/** The file as docker-compose resolves it, with every required variable set. */
export function resolvedCompose(): ComposeModel {
  const dir = mkdtempSync(join(tmpdir(), 'skillserve-compose-'));
  try {
    const res = composeConfig(composeSecrets(dir));
    if (res.status !== 0) throw new Error(`docker-compose config failed:\n${res.stderr}`);
    return parse(res.stdout) as ComposeModel;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A service's environment as a map (compose allows a list of KEY=VALUE too). */
export function serviceEnv(service: any): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((e: string) => {
        const i = e.indexOf('=');
        return [e.slice(0, i), e.slice(i + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

/** Services built from this repository's Dockerfile: the skillserve roles. */
export function skillserveServices(model: ComposeModel): [string, any][] {
  return Object.entries(model.services).filter(([, s]) => s.build !== undefined);
}
