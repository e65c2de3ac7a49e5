import { LRUCache } from 'lru-cache';
import { AppError } from '../errors/index.js';
import { hashKey, keyPattern, type Principal } from './key-store.js';

/** The one thing the authenticator needs from the key store. */
export interface KeyLookup {
  lookup(hash: Buffer): Promise<Principal | 'revoked' | undefined>;
}

type Answer = Principal | 'revoked' | 'unknown';

interface Entry {
  answer: Answer;
  /** When the lookup that gave this answer started: the answer is at least that fresh. */
  at: number;
  /** After a failed lookup, no new one before this (epoch ms); the last answer serves meanwhile. */
  retryAt: number;
}

interface Lookup {
  promise: Promise<Answer>;
  since: number;
}

export interface AuthenticatorOptions {
  keys: KeyLookup;
  /** How long a lookup is trusted: a revoked key stops working on every gateway within this time. */
  ttlMs: number;
  /** Longest a request waits for the database (KEY_LOOKUP_TIMEOUT_MS); default 500 ms. */
  lookupTimeoutMs?: number;
  maxEntries?: number;
}

/** After a lookup failed, the next one for that key waits this long (or the TTL, if shorter). */
const RETRY_AFTER_FAILURE_MS = 1_000;

/**
 * Resolves `Authorization: Bearer <key>` to a principal, with the answers of the key store cached
 * in process (unknown keys too, so a flood of made-up keys does not reach Postgres), and
 * concurrent lookups of one key sharing one query.
 *
 * A known key never waits on the database while its answer is younger than `ttlMs`: past half
 * the TTL it is looked up again in the background (refresh-ahead), so a key in use stays fresh
 * and a revoked key stops within `ttlMs`. A request waits — at most `lookupTimeoutMs` from the
 * start of the lookup — only for an unknown key, or a known one unused for longer than the TTL;
 * when the database does not answer in that time (down, or hung), a known key is served on its
 * last answer and an unknown one gets 503 DATABASE_UNAVAILABLE.
 */
export class Authenticator {
  private readonly cache: LRUCache<string, Entry>;
  private readonly lookups = new Map<string, Lookup>();
  /**
   * The last lookup failed or did not answer in time, and none has succeeded since: the database
   * is down or hung, so known keys are served on their last answer without waiting again.
   */
  private dbTrouble = false;
  private readonly ttlMs: number;
  private readonly lookupTimeoutMs: number;

  constructor(private readonly opts: AuthenticatorOptions) {
    this.cache = new LRUCache<string, Entry>({ max: opts.maxEntries ?? 10_000 });
    this.ttlMs = opts.ttlMs;
    this.lookupTimeoutMs = opts.lookupTimeoutMs ?? 500;
  }

  async authenticate(header: string | undefined): Promise<Principal> {
    if (!header) throw unauthorized('missing', 'send your API key as "Authorization: Bearer <key>"');
    const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
    const key = match?.[1];
    if (!key || !keyPattern.test(key))
      throw unauthorized('malformed', 'the Authorization header is not "Bearer <key>" with a skillserve key');
    const hash = hashKey(key);
    const hex = hash.toString('hex');
    const now = Date.now();
    const entry = this.cache.get(hex);
    if (entry) {
      const age = now - entry.at;
      // The common case, every request: a fresh answer, without any promise machinery.
      if (age < this.ttlMs) {
        if (age >= this.ttlMs / 2 && now >= entry.retryAt) this.lookup(hex, hash);
        return principalOf(entry.answer);
      }
      if (now < entry.retryAt) return principalOf(entry.answer);
      if (this.dbTrouble) {
        this.lookup(hex, hash);
        return principalOf(entry.answer);
      }
    }
    const answer = await this.wait(this.lookup(hex, hash));
    if (answer !== undefined) return principalOf(answer);
    // The database did not answer in time: a key seen before keeps its last known answer.
    if (entry) return principalOf(entry.answer);
    throw new AppError('DATABASE_UNAVAILABLE', 'cannot check the API key right now', undefined, { retryAfterS: 1 });
  }

  /** The lookup of one key, started if none is in flight; it caches its answer when it lands. */
  private lookup(hex: string, hash: Buffer): Lookup {
    const running = this.lookups.get(hex);
    if (running) return running;
    const since = Date.now();
    const promise = this.opts.keys.lookup(hash).then(
      (found) => {
        const answer: Answer = found ?? 'unknown';
        this.cache.set(hex, { answer, at: since, retryAt: 0 });
        this.dbTrouble = false;
        return answer;
      },
      (err: unknown) => {
        this.dbTrouble = true;
        const entry = this.cache.get(hex, { updateAgeOnGet: false });
        if (entry) entry.retryAt = Date.now() + Math.min(this.ttlMs, RETRY_AFTER_FAILURE_MS);
        throw err;
      },
    );
    const lookup = { promise, since };
    this.lookups.set(hex, lookup);
    // A background refresh's failure is nobody's request: it must not be an unhandled rejection.
    promise.catch(() => undefined).finally(() => this.lookups.delete(hex));
    return lookup;
  }

  /** The lookup's answer if it comes within `lookupTimeoutMs` of its start; undefined otherwise. */
  private async wait(lookup: Lookup): Promise<Answer | undefined> {
    const left = lookup.since + this.lookupTimeoutMs - Date.now();
    if (left <= 0) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => {
        this.dbTrouble = true;
        resolve(undefined);
      }, left);
    });
    try {
      return await Promise.race([lookup.promise, timeout]);
    } catch {
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }
}

function principalOf(answer: Answer): Principal {
  if (answer === 'unknown') throw unauthorized('unknown', 'this API key is not known');
  if (answer === 'revoked') throw unauthorized('revoked', 'this API key was revoked');
  return answer;
}

function unauthorized(reason: string, message: string): AppError {
  return new AppError('UNAUTHORIZED', message, { reason });
}
