import type { Config } from '../config/index.js';
import type { SkillDescriptor } from '../skills/backend.js';

/** What one skill's batcher runs with. */
export interface BatchSettings {
  /** 1 = no batching: each job is one Infer call. */
  maxBatchSize: number;
  maxQueueDelayMs: number;
  preferredBatchSizes: number[];
  maxInFlightBatches: number;
  /** A job that finds the batcher idle goes at once (BATCH_FLUSH_WHEN_IDLE). */
  flushWhenIdle: boolean;
}

type BatchConfig = Pick<
  Config,
  'BATCH_MAX_SIZE' | 'BATCH_MAX_DELAY_MS' | 'BATCH_MAX_IN_FLIGHT' | 'BATCH_OVERRIDES' | 'BATCH_FLUSH_WHEN_IDLE'
>;

/**
 * A skill's batch settings: what its model declares (`batching` in the catalogue), with the
 * cluster's settings on top.
 *
 * - size: `BATCH_OVERRIDES` for the skill if set, else the smaller of the model's
 *   `maxBatchSize` and `BATCH_MAX_SIZE` (so `BATCH_MAX_SIZE=1` turns batching off everywhere);
 *   never above the model's own maximum, which is a limit of the model, not a preference.
 * - delay: `BATCH_OVERRIDES`, else the model's `maxQueueDelayMs`, else `BATCH_MAX_DELAY_MS`.
 * - preferred sizes: the model's, minus those above the size.
 * - batches in flight: `BATCH_MAX_IN_FLIGHT`.
 *
 * The catalogue is written by skills in any language, so declared values that are not
 * positive integers (or a non-negative delay) are ignored rather than trusted.
 */
export function batchSettings(
  config: BatchConfig,
  skill: string,
  declared?: SkillDescriptor['batching'] | null,
): BatchSettings {
  const modelMax = positiveInt(declared?.maxBatchSize);
  const modelDelay = declared?.maxQueueDelayMs;
  const override = config.BATCH_OVERRIDES[skill];
  let maxBatchSize = override?.maxBatchSize ?? Math.min(config.BATCH_MAX_SIZE, modelMax ?? Infinity);
  if (modelMax !== undefined) maxBatchSize = Math.min(maxBatchSize, modelMax);
  const maxQueueDelayMs =
    override?.maxQueueDelayMs ??
    (typeof modelDelay === 'number' && Number.isFinite(modelDelay) && modelDelay >= 0
      ? modelDelay
      : config.BATCH_MAX_DELAY_MS);
  const preferred = Array.isArray(declared?.preferredBatchSizes) ? declared.preferredBatchSizes : [];
  const preferredBatchSizes = [...new Set(preferred.map(positiveInt))]
    .filter((p): p is number => p !== undefined && p <= maxBatchSize)
    .sort((a, b) => a - b);
  return {
    maxBatchSize,
    maxQueueDelayMs,
    preferredBatchSizes,
    maxInFlightBatches: config.BATCH_MAX_IN_FLIGHT,
    // Absent (older configs built by hand) means the default, on.
    flushWhenIdle: config.BATCH_FLUSH_WHEN_IDLE ?? true,
  };
}

/**
 * How many jobs a skill's BullMQ worker may hold. With batching, enough for every in-flight
 * batch to be full plus one full batch forming meanwhile, so the model is never left waiting for
 * BullMQ to hand over jobs; never below `DISPATCHER_CONCURRENCY`.
 */
export function workerConcurrency(settings: BatchSettings, dispatcherConcurrency: number): number {
  if (settings.maxBatchSize <= 1) return dispatcherConcurrency;
  return Math.max(dispatcherConcurrency, settings.maxBatchSize * (settings.maxInFlightBatches + 1));
}

function positiveInt(n: unknown): number | undefined {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 ? n : undefined;
}
