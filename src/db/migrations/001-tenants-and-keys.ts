/** Tenants and their API keys. Keys are stored as a SHA-256 hash only; the key is shown once. */
export const sql = `
CREATE TABLE tenants (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  -- The first characters of the key, to recognise it in listings; not enough to use it.
  prefix      text NOT NULL,
  hash        bytea NOT NULL UNIQUE,
  tier        text NOT NULL CHECK (tier IN ('free', 'standard', 'premium')),
  name        text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);

CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);
`;
