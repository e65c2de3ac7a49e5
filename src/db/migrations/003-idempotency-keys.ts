/**
 * Idempotency keys of memory writes: the first request with a key stores its answer in the same
 * transaction as its write, so a retry with the key (after a timeout, a dropped connection, a
 * 503 whose outcome was unclear) gets that answer again instead of writing twice. Rows older
 * than IDEMPOTENCY_RETENTION_S are swept.
 */
export const sql = `
CREATE TABLE idempotency_keys (
  tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  key           text NOT NULL CONSTRAINT idempotency_keys_key_length CHECK (char_length(key) BETWEEN 1 AND 128),
  -- SHA-256 of the route and the request, to tell a retry from a key reused for another request.
  request_hash  bytea NOT NULL,
  status        integer,
  response      jsonb,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
`;
