import { LRUCache } from 'lru-cache';
import { AppError } from '../errors/index.js';
import { hashKey, keyPattern, type Principal } from './key-store.js';

/** The one thing the authenticator needs from the key store. */
export interface KeyLookup {
  lookup(hash: Buffer): Promise<Principal | 'revoked' | undefined>;
}

type Cached = Principal | 'revoked' | 'unknown';

export interface AuthenticatorOptions {
  keys: KeyLookup;
  /** How long a lookup is trusted: a revoked key stops working on every gateway within this time. */
  ttlMs: number;
  maxEntries?: number;
}

/**
 * Resolves `Authorization: Bearer <key>` to a principal. Lookups are cached in-process for
 * `ttlMs` (unknown keys too, so a flood of made-up keys does not reach Postgres), concurrent
 * lookups of one key share one query, and while Postgres is down a key seen before keeps working
 * on its last known answer.
 */
export class Authenticator {
  private readonly cache: LRUCache<string, Cached, Buffer>;

  constructor(opts: AuthenticatorOptions) {
    this.cache = new LRUCache<string, Cached, Buffer>({
      max: opts.maxEntries ?? 10_000,
      ttl: opts.ttlMs,
      allowStaleOnFetchRejection: true,
      noDeleteOnFetchRejection: true,
      fetchMethod: async (_hex, _stale, { context }) => (await opts.keys.lookup(context)) ?? 'unknown',
    });
  }

  async authenticate(header: string | undefined): Promise<Principal> {
    if (!header) throw unauthorized('missing', 'send your API key as "Authorization: Bearer <key>"');
    const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
    const key = match?.[1];
    if (!key || !keyPattern.test(key))
      throw unauthorized('malformed', 'the Authorization header is not "Bearer <key>" with a skillserve key');
    const hash = hashKey(key);
    const hex = hash.toString('hex');
    // A fresh cached answer without fetch()'s promise machinery: the common case, every request.
    let found = this.cache.get(hex, { noDeleteOnStaleGet: true });
    if (found === undefined) {
      try {
        found = await this.cache.fetch(hex, { context: hash });
      } catch (err) {
        throw new AppError('DATABASE_UNAVAILABLE', 'cannot check the API key right now', undefined, { cause: err });
      }
    }
    if (found === undefined) throw new AppError('DATABASE_UNAVAILABLE', 'cannot check the API key right now');
    if (found === 'unknown') throw unauthorized('unknown', 'this API key is not known');
    if (found === 'revoked') throw unauthorized('revoked', 'this API key was revoked');
    return found;
  }
}

function unauthorized(reason: string, message: string): AppError {
  return new AppError('UNAUTHORIZED', message, { reason });
}
