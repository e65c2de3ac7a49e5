import type { WireTensor } from './proto.js';

/**
 * The skill contract as the rest of the cluster sees it: what one inference asks of a skill
 * (an item) and what it answers. src/queue builds its job types on these; nothing here knows
 * of queues or gateways (eslint.config.js keeps it so).
 */

/** One inference for a skill: text or tensors, the task and its parameters. */
export interface InferItem {
  text?: string;
  tensors?: WireTensor[];
  task: string;
  maxTokens: number;
  temperature?: number;
  modelVersion: string;
}

/** What a skill's output is: text, JSON, or tensors. */
export type SkillOutput = { text: string } | { json: unknown } | { tensors: WireTensor[] };

/** A skill's answer to one item, with the call's timings. */
export interface SkillAnswer {
  output: SkillOutput;
  model: string;
  timing: {
    /** Model time inside the skill. */
    computeMs: number;
    /** Whole gRPC round trip, as the caller saw it. */
    skillMs: number;
    /** Items computed together with this one. */
    batchSize: number;
  };
}

/** What a skill answer's output is to a client: the JSON, the text, or the tensors. */
export function outputValue(answer: Pick<SkillAnswer, 'output'>): unknown {
  const out = answer.output;
  return 'json' in out ? out.json : 'text' in out ? out.text : out.tensors;
}
