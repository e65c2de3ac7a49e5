import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { hashKey, KeyStore, type Tier, tiers } from '../../src/auth/key-store.js';
import type { Config } from '../../src/config/index.js';
import { migrate } from '../../src/db/migrate.js';
import { createPgPool } from '../../src/lib/postgres.js';
import { closeRedis, describeRedis, openRedis, redisReady } from '../../src/lib/redis.js';
import { deleteMatching } from '../../src/lib/redis-scan.js';
import type { Scenario } from './scenario.js';

/** Every tenant a load test creates is named `loadtest-<run>-…`, every key `loadtest`. */
export const TENANT_PREFIX = 'loadtest-';
const KEY_NAME = 'loadtest';

export interface KeyPlanOptions {
  users: number;
  requestsPerUserPerMinute: number;
  weights: Scenario['weights'];
  tiers: Scenario['tiers'];
  /** The cluster's per key and skill limits (RATE_LIMITS) and their window. */
  limits: Record<string, number>;
  windowS: number;
  /** The share of a key's limit its users may use on average (Poisson arrivals burst above it). */
  headroom: number;
  keysPerTenant: number;
}

/** The plan for `users` at `rate` with the scenario's mix and tiers, under the cluster's configured limits. */
export function planFor(scenario: Scenario, config: Config, users: number, rate: number): KeyPlan {
  return planKeys({
    users,
    requestsPerUserPerMinute: rate,
    weights: scenario.weights,
    tiers: scenario.tiers,
    limits: config.RATE_LIMITS,
    windowS: config.RATE_LIMIT_WINDOW_S,
    headroom: scenario.limitHeadroom,
    keysPerTenant: scenario.keysPerTenant,
  });
}

export interface KeyPlan {
  /** Tier of each key to create, in order. */
  keys: Tier[];
  /** Index into `keys` of each user. */
  userKeys: number[];
  usersPerKey: Record<Tier, number>;
  keysPerTenant: number;
  /** Tiers on which even one user exceeds the headroom (its users will meet 429s). */
  warnings: string[];
}

/**
 * Spreads `users` over keys of mixed tiers so that no key's users reach its tier's limit on any
 * skill: a user sends `requestsPerUserPerMinute` requests, a share of them to the busiest skill
 * (nlp serves both its infer endpoint and the async jobs). Tiers are interleaved user by user
 * (smooth weighted round robin), so the first N users of a plan have the tier mix too.
 */
export function planKeys(o: KeyPlanOptions): KeyPlan {
  const total = Object.values(o.weights).reduce((a, b) => a + b, 0);
  const busiestShare = Math.max((o.weights.nlp + o.weights.job) / total, o.weights.onnx / total);
  const perUserPerWindow = o.requestsPerUserPerMinute * (o.windowS / 60) * busiestShare;
  const usersPerKey = {} as Record<Tier, number>;
  const warnings: string[] = [];
  for (const tier of tiers) {
    const limit = o.limits[tier] ?? 0;
    const fits = Math.floor((o.headroom * limit) / perUserPerWindow);
    if (fits < 1 && (o.tiers[tier] ?? 0) > 0) {
      warnings.push(
        `one ${tier} user sends ${perUserPerWindow.toFixed(0)} requests per ${o.windowS} s to one skill, ` +
          `above ${o.headroom * 100} % of the tier's limit (${limit}): expect 429s`,
      );
    }
    usersPerKey[tier] = Math.max(1, fits);
  }
  const shares = tiers.map((t) => Math.max(0, o.tiers[t] ?? 0));
  const shareSum = shares.reduce((a, b) => a + b, 0);
  if (!(shareSum > 0)) throw new Error('tiers: at least one tier needs a positive share');
  const current = tiers.map(() => 0);
  const seen = tiers.map(() => 0);
  const keyOf = new Map<string, number>();
  const keys: Tier[] = [];
  const userKeys: number[] = [];
  for (let u = 0; u < o.users; u++) {
    let best = 0;
    for (let i = 0; i < tiers.length; i++) {
      current[i]! += shares[i]!;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= shareSum;
    const tier = tiers[best]!;
    const block = `${tier}:${Math.floor(seen[best]! / usersPerKey[tier])}`;
    seen[best]!++;
    let index = keyOf.get(block);
    if (index === undefined) {
      index = keys.push(tier) - 1;
      keyOf.set(block, index);
    }
    userKeys.push(index);
  }
  return { keys, userKeys, usersPerKey, keysPerTenant: Math.max(1, o.keysPerTenant), warnings };
}

export interface KeysFileKey {
  tenant: string;
  tenantId: string;
  tier: Tier;
  key: string;
}

/** What the load-test tools read (LOADTEST_KEYS): the keys, which user uses which, and the probe's key. */
export interface KeysFile {
  runId: string;
  endpoint: string;
  createdAt: string;
  keys: KeysFileKey[];
  userKeys: number[];
  usersPerKey: Record<Tier, number>;
  /** A premium key of its own for the independent low-rate probe client. */
  probe: KeysFileKey;
}

/** Where the keys of a run are kept unless told otherwise (mode 600: it holds live keys). */
export function defaultKeysPath(config: Config): string {
  return join(config.RUN_DIR, 'loadtest', 'keys.json');
}

function pool(config: Config) {
  return createPgPool(config.DATABASE_URL, { name: 'skillserve-loadtest', schema: config.DATABASE_SCHEMA, max: 2 });
}

/** Creates the tenants and keys of `plan` (and the probe's) through the project's key store, and writes the keys file. */
export async function createKeys(config: Config, plan: KeyPlan, endpoint: string, path: string): Promise<KeysFile> {
  const runId = randomBytes(4).toString('hex');
  const db = pool(config);
  try {
    await migrate(db, config.DATABASE_SCHEMA);
    const store = new KeyStore(db);
    const make = async (tenant: string, tier: Tier): Promise<KeysFileKey> => {
      const { key } = await store.create({ tenant, tier, name: KEY_NAME });
      const principal = await store.lookup(hashKey(key));
      if (!principal || principal === 'revoked') throw new Error(`the key just created for ${tenant} is not found`);
      return { tenant, tenantId: principal.tenantId, tier, key };
    };
    const keys: KeysFileKey[] = [];
    const perTier: Record<string, number> = {};
    for (const tier of plan.keys) {
      const n = perTier[tier] ?? 0;
      perTier[tier] = n + 1;
      // keysPerTenant keys of one tier share a tenant (and so its cache entries).
      const tenantNo = Math.floor(n / plan.keysPerTenant);
      keys.push(await make(`${TENANT_PREFIX}${runId}-${tier}-${tenantNo}`, tier));
    }
    const file: KeysFile = {
      runId,
      endpoint,
      createdAt: new Date().toISOString(),
      keys,
      userKeys: plan.userKeys,
      usersPerKey: plan.usersPerKey,
      probe: await make(`${TENANT_PREFIX}${runId}-probe`, 'premium'),
    };
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${JSON.stringify(file)}\n`, { mode: 0o600 });
    chmodSync(path, 0o600);
    return file;
  } finally {
    await db.end();
  }
}

export function readKeysFile(path: string): KeysFile {
  return JSON.parse(readFileSync(path, 'utf8')) as KeysFile;
}

/**
 * Removes a run's tenants (their keys and stored facts go with them) and their cached answers in
 * Redis, then the keys file. Async jobs stay for ASYNC_JOB_RETENTION_S, as any tenant's do.
 */
export async function removeKeys(config: Config, file: KeysFile, path?: string): Promise<number> {
  const tenants = [...new Set([...file.keys, file.probe].map((k) => k.tenant))];
  const ids = [...new Set([...file.keys, file.probe].map((k) => k.tenantId))];
  const db = pool(config);
  let removed: number;
  try {
    removed = await new KeyStore(db).deleteTenants(tenants);
  } finally {
    await db.end();
  }
  await deleteCacheEntries(config, ids);
  if (path) rmSync(path, { force: true });
  return removed;
}

/** Tenants left by runs that were killed before their teardown: `loadtest-…` tenants whose keys are all `loadtest` keys. */
export async function removeLeftovers(config: Config): Promise<number> {
  const db = pool(config);
  try {
    await migrate(db, config.DATABASE_SCHEMA);
    const store = new KeyStore(db);
    const byTenant = new Map<string, boolean>();
    for (const k of await store.list()) {
      if (!k.tenant.startsWith(TENANT_PREFIX)) continue;
      byTenant.set(k.tenant, (byTenant.get(k.tenant) ?? true) && k.name === KEY_NAME);
    }
    return await store.deleteTenants([...byTenant].filter(([, ours]) => ours).map(([t]) => t));
  } finally {
    await db.end();
  }
}

/** Cached answers are keyed `<prefix>:cache:<tenant id>:{<hash>}`: remove the run's tenants' ones. */
async function deleteCacheEntries(config: Config, tenantIds: string[]): Promise<void> {
  const redis = openRedis(config, { name: 'loadtest-keys', commandTimeoutMs: 5_000 });
  try {
    await redisReady(redis, describeRedis(config));
    for (const id of tenantIds) await deleteMatching(redis, `${config.KEY_PREFIX}:cache:${id}:*`);
  } finally {
    await closeRedis(redis);
  }
}
