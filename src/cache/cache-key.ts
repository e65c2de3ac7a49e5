import { createHash } from 'node:crypto';

export interface CacheKeyParts {
  skill: string;
  /** name@version of the model that serves the request: a new version never reads old answers. */
  model: string;
  task: string;
  text?: string;
  /** Tensors or any other structured input; hashed in canonical JSON form. */
  structured?: unknown;
  parameters: Record<string, unknown>;
  /** Tenant id, or `shared` for a skill that declares its answers tenant-independent. */
  scope: string;
}

/**
 * JSON with object keys sorted at every level, so `{a, b}` and `{b, a}` hash alike.
 * Undefined members are dropped, as JSON.stringify drops them.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The hash that names a cached answer (and, for coalescing, its job). Text is normalised to
 * Unicode NFC only: canonically equivalent strings are the same input to any model, while
 * trimming or case-folding could change a model's answer.
 */
export function cacheKeyHash(parts: CacheKeyParts): string {
  const normalised = {
    v: 1,
    skill: parts.skill,
    model: parts.model,
    task: parts.task,
    text: parts.text?.normalize('NFC'),
    structured: parts.structured,
    parameters: parts.parameters,
    scope: parts.scope,
  };
  return createHash('sha256').update(canonicalJson(normalised)).digest('hex');
}
