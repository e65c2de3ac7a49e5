import type { Config } from '../../config/index.js';
import type { SkillBackend } from '../backend.js';
import { createNlpBackend } from './nlp/index.js';
import { createOpenAiBackend } from './openai/index.js';

/** Builds a backend from configuration; throws with a clear message when it is misconfigured. */
export type BackendFactory = (config: Config) => SkillBackend;

/** Every skill backend this build can host, by name. */
export const backends: Readonly<Record<string, BackendFactory>> = {
  nlp: () => createNlpBackend(),
  openai: (config) => createOpenAiBackend(config),
};

export function createBackend(name: string, config: Config): SkillBackend {
  const factory = backends[name];
  if (!factory) {
    throw new Error(`unknown skill "${name}": this build has ${Object.keys(backends).join(', ')} (set SKILL_NAME)`);
  }
  return factory(config);
}
