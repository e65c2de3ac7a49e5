import * as m001 from './001-tenants-and-keys.js';
import * as m002 from './002-entity-triples.js';
import * as m003 from './003-idempotency-keys.js';

/** A schema change. Never edited once shipped: the runner refuses a changed checksum. */
export interface Migration {
  id: string;
  sql: string;
}

/** Every migration, in the order it is applied. Append only. */
export const migrations: readonly Migration[] = [
  { id: '001-tenants-and-keys', sql: m001.sql },
  { id: '002-entity-triples', sql: m002.sql },
  { id: '003-idempotency-keys', sql: m003.sql },
];
