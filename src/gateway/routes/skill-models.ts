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

/**
 * The models of a multi-model skill for `GET /v1/skills/:skill`: signature from the catalogue,
 * each version's state across the live replicas (the catalogue's when none is up).
 */
export function describeModels(models: readonly ModelDescriptor[], replicas: readonly SkillReplica[]) {
  return models.map((m) => {
    const states = new Map<string, ModelVersionStatus['state']>();
    const sources = replicas.length > 0 ? replicas.flatMap((r) => r.models ?? []) : [m];
    for (const v of sources.filter((s) => s.name === m.name).flatMap((s) => s.versions)) {
      const seen = states.get(v.version);
      if (!seen || RANK[v.state] < RANK[seen]) states.set(v.version, v.state);
    }
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
      versions: [...states]
        .sort(([a], [b]) => Number(b) - Number(a))
        .map(([version, state]) => ({ version, state: replicas.length > 0 ? state : 'UNAVAILABLE' })),
    };
  });
}
