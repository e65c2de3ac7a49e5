/**
 * Entity memory: subject–verb–object facts per tenant.
 *
 * Length limits are in characters (code points, as char_length counts them) and chosen so every
 * lookup index entry fits a btree page at 4 bytes a character: subject 256, verb 128, object 512.
 * The three together can exceed btree's ~2.7 kB entry limit, so uniqueness is on a SHA-256 of
 * the length-prefixed triple instead of the raw text.
 *
 * Indexes follow the queries: recall by tenant plus any one of subject, verb or object, ordered
 * by confidence then recency (id breaks ties), so a page is an index range scan with no sort.
 */
export const sql = `
-- convert_to is only STABLE because it depends on the database encoding, which never changes
-- for a database; declaring this IMMUTABLE lets a generated column use it. The length prefixes
-- make the encoding unambiguous ("ab"+"c" and "a"+"bc" hash differently).
CREATE FUNCTION triple_key(subject text, verb text, object text) RETURNS bytea
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN sha256(convert_to(
    char_length(subject) || ':' || subject || char_length(verb) || ':' || verb || ':' || object, 'UTF8'));

CREATE TABLE triples (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  subject     text NOT NULL CONSTRAINT triples_subject_length CHECK (char_length(subject) BETWEEN 1 AND 256),
  verb        text NOT NULL CONSTRAINT triples_verb_length CHECK (char_length(verb) BETWEEN 1 AND 128),
  object      text NOT NULL CONSTRAINT triples_object_length CHECK (char_length(object) BETWEEN 1 AND 512),
  confidence  double precision NOT NULL
              CONSTRAINT triples_confidence_range CHECK (confidence >= 0 AND confidence <= 1),
  -- Where the latest assertion came from (e.g. "api", "extract:nlp").
  source      text NOT NULL DEFAULT '' CONSTRAINT triples_source_length CHECK (char_length(source) <= 128),
  -- How many times the fact was asserted; each one was combined into confidence.
  assertions  integer NOT NULL DEFAULT 1 CONSTRAINT triples_assertions_positive CHECK (assertions >= 1),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  key_hash    bytea NOT NULL GENERATED ALWAYS AS (triple_key(subject, verb, object)) STORED
);

CREATE UNIQUE INDEX triples_tenant_key_uq ON triples (tenant_id, key_hash);
CREATE INDEX triples_tenant_order_idx ON triples (tenant_id, confidence DESC, updated_at DESC, id DESC);
CREATE INDEX triples_tenant_subject_idx ON triples (tenant_id, subject, confidence DESC, updated_at DESC, id DESC);
CREATE INDEX triples_tenant_verb_idx ON triples (tenant_id, verb, confidence DESC, updated_at DESC, id DESC);
CREATE INDEX triples_tenant_object_idx ON triples (tenant_id, object, confidence DESC, updated_at DESC, id DESC);
`;
