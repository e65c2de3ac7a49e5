import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';

export const tiers = ['free', 'standard', 'premium'] as const;
export type Tier = (typeof tiers)[number];

/** Who is calling: resolved from an API key. */
export interface Principal {
  keyId: string;
  tenantId: string;
  tenant: string;
  tier: Tier;
}

export interface KeyInfo {
  id: string;
  tenant: string;
  tier: Tier;
  name: string;
  prefix: string;
  createdAt: Date;
  revokedAt: Date | null;
}

/** `sks_` and 32 random bytes in base64url: 256 bits, so a plain SHA-256 is a safe stored form. */
export const keyPattern = /^sks_[A-Za-z0-9_-]{43}$/;
const PREFIX_CHARS = 12;

export function hashKey(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** API keys and tenants in Postgres. Only hashes are stored; the key itself is returned once. */
export class KeyStore {
  constructor(private readonly pool: pg.Pool) {}

  async create(opts: { tenant: string; tier: Tier; name?: string }): Promise<KeyInfo & { key: string }> {
    const key = `sks_${randomBytes(32).toString('base64url')}`;
    const prefix = key.slice(0, PREFIX_CHARS);
    const { rows } = await this.pool.query<{ id: string; created_at: Date }>(
      `WITH t AS (
         INSERT INTO tenants (name) VALUES ($1)
         ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
         RETURNING id
       )
       INSERT INTO api_keys (tenant_id, prefix, hash, tier, name)
       SELECT t.id, $2, $3, $4, $5 FROM t
       RETURNING id, created_at`,
      [opts.tenant, prefix, hashKey(key), opts.tier, opts.name ?? ''],
    );
    const row = rows[0]!;
    return {
      key,
      id: row.id,
      tenant: opts.tenant,
      tier: opts.tier,
      name: opts.name ?? '',
      prefix,
      createdAt: row.created_at,
      revokedAt: null,
    };
  }

  async list(tenant?: string): Promise<KeyInfo[]> {
    const { rows } = await this.pool.query<{
      id: string;
      tenant: string;
      tier: Tier;
      name: string;
      prefix: string;
      created_at: Date;
      revoked_at: Date | null;
    }>(
      `SELECT k.id, t.name AS tenant, k.tier, k.name, k.prefix, k.created_at, k.revoked_at
         FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
        WHERE $1::text IS NULL OR t.name = $1
        ORDER BY t.name, k.created_at`,
      [tenant ?? null],
    );
    return rows.map((r) => ({
      id: r.id,
      tenant: r.tenant,
      tier: r.tier,
      name: r.name,
      prefix: r.prefix,
      createdAt: r.created_at,
      revokedAt: r.revoked_at,
    }));
  }

  /** Revokes by key id or by the shown prefix; returns how many keys were revoked. */
  async revoke(idOrPrefix: string): Promise<number> {
    const { rowCount } = await this.pool.query(
      `UPDATE api_keys SET revoked_at = now()
        WHERE revoked_at IS NULL AND (id::text = $1 OR prefix = $1)`,
      [idOrPrefix],
    );
    return rowCount ?? 0;
  }

  /**
   * Deletes tenants by name with their keys and stored facts (ON DELETE CASCADE): what a load
   * test created for itself. Returns how many tenants were deleted.
   */
  async deleteTenants(names: string[]): Promise<number> {
    if (names.length === 0) return 0;
    const { rowCount } = await this.pool.query('DELETE FROM tenants WHERE name = ANY($1::text[])', [names]);
    return rowCount ?? 0;
  }

  /** The principal for a key hash; `revoked` for a revoked key; undefined for an unknown one. */
  async lookup(hash: Buffer): Promise<Principal | 'revoked' | undefined> {
    const { rows } = await this.pool.query<{
      id: string;
      tenant_id: string;
      tenant: string;
      tier: Tier;
      revoked_at: Date | null;
    }>(
      `SELECT k.id, k.tenant_id, t.name AS tenant, k.tier, k.revoked_at
         FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
        WHERE k.hash = $1`,
      [hash],
    );
    const row = rows[0];
    if (!row) return undefined;
    if (row.revoked_at) return 'revoked';
    return { keyId: row.id, tenantId: row.tenant_id, tenant: row.tenant, tier: row.tier };
  }
}
