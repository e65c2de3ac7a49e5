/** What the client asked of the cache, in the usual HTTP words. */
export interface CacheDirectives {
  /** no-store: neither read nor write. */
  noStore: boolean;
  /** no-cache: do not answer from the cache; recompute and refresh the entry. */
  noCache: boolean;
  /** max-age=N: accept an entry at most N seconds old. */
  maxAgeS?: number;
}

/** Parses a Cache-Control request header; unknown directives are ignored, as HTTP says. */
export function parseCacheControl(header: string | undefined): CacheDirectives {
  const d: CacheDirectives = { noStore: false, noCache: false };
  if (!header) return d;
  for (const part of header.toLowerCase().split(',')) {
    const [name, raw] = part.trim().split('=', 2);
    if (name === 'no-store') d.noStore = true;
    else if (name === 'no-cache') d.noCache = true;
    else if (name === 'max-age' && raw !== undefined) {
      const n = Number(raw.replace(/^"|"$/g, ''));
      if (Number.isInteger(n) && n >= 0) d.maxAgeS = n;
    }
  }
  return d;
}
