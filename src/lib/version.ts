import { readFileSync } from 'node:fs';

let cached: string | undefined;

/**
 * This build's version, from package.json (the same relative depth from src/lib and dist/lib).
 * Read on first use, not on import.
 */
export function buildVersion(): string {
  if (cached === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
        version?: unknown;
      };
      cached = typeof pkg.version === 'string' ? pkg.version : 'unknown';
    } catch {
      cached = 'unknown';
    }
  }
  return cached;
}
