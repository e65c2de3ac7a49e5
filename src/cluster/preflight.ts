import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { type Config, redactUrl } from '../config/index.js';
import { createPgPool } from '../lib/postgres.js';
import { closeRedis, createRedis, describeRedis, openRedis, redisReady } from '../lib/redis.js';
import { keyHolders } from '../lib/redis-scan.js';
import { type NginxVersion, parseNginxVersion } from './nginx.js';

/** A problem found before start-up, with what to do about it. */
export class PreflightError extends Error {
  override name = 'PreflightError';
}

/**
 * Checks that Redis answers and persists its writes (AOF), since it holds the accepted jobs.
 * Without persistence it refuses (REDIS_PERSISTENCE=require) or returns the warning to print
 * (`warn`); with it, returns undefined.
 */
export async function checkRedis(config: Config): Promise<string | undefined> {
  if (config.REDIS_CLUSTER_NODES.length > 0) return checkRedisCluster(config);
  const redis = createRedis(config.REDIS_URL, {
    name: 'preflight',
    retryStrategy: () => null,
    lazyConnect: true,
    enableOfflineQueue: true,
  });
  const url = redactUrl(config.REDIS_URL);
  let info: string;
  try {
    await redis.connect();
    await redis.ping();
    info = await redis.info('persistence');
  } catch (err) {
    throw new PreflightError(
      `Redis does not answer at ${url} (${(err as Error).message}).\n` +
        `  Start it with the project's configuration (AOF on), e.g.: bash scripts/services.sh\n` +
        `  or: redis-server redis/redis.conf --daemonize yes --bind 127.0.0.1 --port 6379 --dir .run/redis\n` +
        `  or point REDIS_URL at a running Redis.`,
    );
  } finally {
    redis.disconnect();
  }
  if (/^aof_enabled:1\b/m.test(info)) return undefined;
  const problem =
    `Redis at ${url} does not persist its writes (appendonly no): a Redis restart would lose every ` +
    `accepted job, and clients holding a job id would get 404.`;
  const fix =
    `  Turn AOF on: redis-cli -u ${url} CONFIG SET appendonly yes (and put "appendonly yes" in its\n` +
    `  redis.conf), or start Redis with the project's redis/redis.conf (bash scripts/services.sh does).`;
  if (config.REDIS_PERSISTENCE === 'require') {
    throw new PreflightError(`${problem}\n${fix}\n  To run anyway (development only): REDIS_PERSISTENCE=warn.`);
  }
  return `WARNING: ${problem}\n${fix}`;
}

/** {@link checkRedis} for a Redis Cluster: it is ready (every slot served), and every master keeps an AOF. */
async function checkRedisCluster(config: Config): Promise<string | undefined> {
  const redis = openRedis(config, { name: 'preflight', commandTimeoutMs: 5_000 });
  const where = describeRedis(config);
  const noAof: string[] = [];
  try {
    try {
      await redisReady(redis, where, 10_000);
    } catch (err) {
      throw new PreflightError((err as Error).message);
    }
    for (const node of keyHolders(redis)) {
      const info = await node.info('persistence');
      if (!/^aof_enabled:1\b/m.test(info)) noAof.push(`${node.options.host}:${node.options.port}`);
    }
  } finally {
    await closeRedis(redis);
  }
  if (noAof.length === 0) return undefined;
  const problem =
    `${where}: masters ${noAof.join(', ')} do not persist their writes (appendonly no): a restart ` +
    `would lose the accepted jobs they hold.`;
  const fix = `  Turn AOF on on every node (appendonly yes in each node's redis.conf, or CONFIG SET appendonly yes).`;
  if (config.REDIS_PERSISTENCE === 'require') {
    throw new PreflightError(`${problem}\n${fix}\n  To run anyway (development only): REDIS_PERSISTENCE=warn.`);
  }
  return `WARNING: ${problem}\n${fix}`;
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
