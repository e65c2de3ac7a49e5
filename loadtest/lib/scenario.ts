import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Profile, Scenario } from '../k6/lib/mix.js';

export type { Profile, Scenario };

/** loadtest/scenario.json: the one scenario every tool of the kit reads. */
export const scenarioPath = fileURLToPath(new URL('../scenario.json', import.meta.url));

export function loadScenario(path = scenarioPath): Scenario {
  return JSON.parse(readFileSync(path, 'utf8')) as Scenario;
}

/** A profile by name, with the overrides a command line or the environment gives. */
export function profileOf(scenario: Scenario, name: string, overrides: Partial<Profile> = {}): Profile {
  const base = scenario.profiles[name];
  if (!base) throw new Error(`profile "${name}": not one of ${Object.keys(scenario.profiles).join(', ')}`);
  const out = { ...base };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
