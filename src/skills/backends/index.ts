import type { Config } from '../../config/index.js';
import type { Logger } from '../../observability/logger.js';
import type { SkillBackend } from '../backend.js';
import { createNlpBackend } from './nlp/index.js';
import { createOpenAiBackend } from './openai/index.js';
import { createOnnxBackend } from './onnx/index.js';

/** Builds a backend from configuration; throws with a clear message when it is misconfigured. */
export type BackendFactory = (config: Config, logger: Logger) => SkillBackend;

/** Every skill backend this build can host, by name. */
export const backends: Readonly<Record<string, BackendFactory>> = {
  nlp: () => createNlpBackend(),
  openai: (config) => createOpenAiBackend(config),
  onnx: (config, logger) =>
    createOnnxBackend({
      repository: config.MODEL_REPOSITORY,
      only: config.ONNX_MODELS,
      idleUnloadMs: config.MODEL_IDLE_UNLOAD_MS,
      intraOpThreads: config.ONNX_INTRA_OP_THREADS,
      logger: logger.child({ backend: 'onnx' }),
    }),
};

export function createBackend(name: string, config: Config, logger: Logger): SkillBackend {
  const factory = backends[name];
  if (!factory) {
    throw new Error(`unknown skill "${name}": this build has ${Object.keys(backends).join(', ')} (set SKILL_NAME)`);
  }
  return factory(config, logger);
}
