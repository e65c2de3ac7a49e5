import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { type Config, redactUrl } from '../config/index.js';
import { createPgPool } from '../lib/postgres.js';
import { createRedis } from '../lib/redis.js';
import { type NginxVersion, parseNginxVersion } from './nginx.js';

/** A problem found before start-up, with what to do about it. */
export class PreflightError extends Error {
  override name = 'PreflightError';
}

export async function checkRedis(config: Config): Promise<void> {
  const redis = createRedis(config.REDIS_URL, {
    name: 'preflight',
    retryStrategy: () => null,
    lazyConnect: true,
    enableOfflineQueue: true,
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new PreflightError(
      `Redis does not answer at ${redactUrl(config.REDIS_URL)} (${(err as Error).message}).\n` +
        `  Start it, e.g.: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no\n` +
        `  or point REDIS_URL at a running Redis.`,
    );
  } finally {
    redis.disconnect();
  }
}

export async function checkPostgres(config: Config): Promise<void> {
  const pool = createPgPool(config.DATABASE_URL, { name: 'skillserve-preflight', max: 1 });
  try {
    await pool.query('select 1');
  } catch (err) {
    throw new PreflightError(
      `Postgres does not answer at ${redactUrl(config.DATABASE_URL)} (${(err as Error).message}).\n` +
        `  Start it, e.g.: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n` +
        `  or point DATABASE_URL at a running Postgres.`,
    );
  } finally {
    await pool.end();
  }
}

export async function checkPortFree(host: string, port: number, what: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new PreflightError(
          `${what} port ${host}:${port} is taken (${err.code}). Is a cluster already running? ` +
            `Try \`skillserve down\`, or choose other ports (PUBLIC_PORT, GATEWAY_BASE_PORT).`,
        ),
      ),
    );
    server.listen(port, host, () => server.close(() => resolve()));
  });
}

/** The version `bin -v` reports, so the config uses the directives that nginx knows. */
export function nginxVersion(bin: string): NginxVersion {
  const out = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  return parseNginxVersion(`${out.stderr ?? ''}${out.stdout ?? ''}`);
}

/** The nginx binary to run: NGINX_BIN if it resolves, else the Debian location. */
export function findNginx(config: Config): string {
  const candidates = [config.NGINX_BIN, '/usr/sbin/nginx', '/usr/local/sbin/nginx'];
  for (const bin of candidates) {
    try {
      execFileSync(bin, ['-v'], { stdio: 'ignore' });
      return bin;
    } catch {
      if (bin.includes('/') && existsSync(bin)) return bin;
    }
  }
  throw new PreflightError(
    `nginx was not found (tried ${candidates.join(', ')}).\n` +
      `  Install it (apt-get install -y nginx-light) or set NGINX_BIN; \`npm run up\` installs it for you.`,
  );
}
