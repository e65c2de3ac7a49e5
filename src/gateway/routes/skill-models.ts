import type { ModelDescriptor, ModelVersionStatus } from '../../skills/backend.js';
import type { SkillReplica } from '../../skills/registry.js';

/** Best state first: a version is as available as its most available replica makes it. */
const RANK: Record<ModelVersionStatus['state'], number> = {
  READY: 0,
  LOADING: 1,
  UNLOADED: 2,
  DRAINING: 3,
  FAILED: 4,
};

/** Each version's best state across `sources` (one per replica), newest first; size and error from the best. */
function versionStates(sources: readonly (readonly ModelVersionStatus[])[], live: boolean) {
  const best = new Map<string, ModelVersionStatus>();
  for (const v of sources.flat()) {
    const seen = best.get(v.version);
    if (!seen || RANK[v.state] < RANK[seen.state]) best.set(v.version, v);
  }
  return [...best.values()]
    .sort((a, b) => Number(b.version) - Number(a.version))
    .map((v) => ({
      version: v.version,
      state: live ? v.state : 'UNAVAILABLE',
      ...(v.sizeBytes !== undefined ? { size_bytes: v.sizeBytes } : {}),
      ...(live && v.error ? { error: v.error } : {}),
    }));
}

/**
 * The models of a multi-model skill for `GET /v1/skills/:skill` and `/v1/skills/:skill/models`:
 * signature from the catalogue, precision and size, each version's state across the live
 * replicas (the catalogue's when none is up), and the same for each variant (`mlp:int8`).
 */
export function describeModels(models: readonly ModelDescriptor[], replicas: readonly SkillReplica[]) {
  const live = replicas.length > 0;
  return models.map((m) => {
    const sources = (live ? replicas.flatMap((r) => r.models ?? []) : [m]).filter((s) => s.name === m.name);
    return {
      name: m.name,
      inputs: m.inputs,
      outputs: m.outputs,
      max_batch_size: m.maxBatchSize,
      ...(m.dynamicBatching
        ? {
            dynamic_batching: {
              max_queue_delay_ms: m.dynamicBatching.maxQueueDelayMs,
              preferred_batch_sizes: m.dynamicBatching.preferredBatchSizes,
            },
          }
        : {}),
      deterministic: m.deterministic,
      ...(m.precision ? { precision: m.precision } : {}),
      ...(m.sizeBytes !== undefined ? { size_bytes: m.sizeBytes } : {}),
      versions: versionStates(
        sources.map((s) => s.versions),
        live,
      ),
      ...(m.variants
        ? {
            default_variant: m.defaultVariant,
            variants: m.variants.map((v) => ({
              name: v.name,
              model: `${m.name}:${v.name}`,
              precision: v.precision,
              default: v.name === m.defaultVariant,
              versions: versionStates(
                sources.map((s) => s.variants?.find((x) => x.name === v.name)?.versions ?? []),
                live,
              ),
            })),
          }
        : {}),
    };
  });
}
