import { z } from 'zod';
import { formatShape, TENSOR_DATATYPES } from '../../tensors.js';

const tensorSpec = z.strictObject({
  name: z.string().min(1).max(256),
  datatype: z.enum(TENSOR_DATATYPES),
  shape: z
    .array(
      z
        .number()
        .int()
        .refine((d) => d === -1 || d > 0, 'a dimension is a positive size or -1 (any size)'),
    )
    .max(8),
});

const versionPolicy = z.union([
  z.strictObject({ latest: z.number().int().min(1) }),
  z.strictObject({ all: z.literal(true) }),
  z.strictObject({ specific: z.array(z.number().int().min(1)).min(1) }),
]);

/**
 * `models/<name>/config.json`: the model's signature and serving knobs, in the spirit of
 * Triton's config.pbtxt. Shapes include the batch dimension, written -1, when max_batch_size > 0.
 */
export const modelConfigSchema = z
  .strictObject({
    /** Optional; when present it must equal the directory name. */
    name: z.string().optional(),
    /** Largest batch one run takes; 0: no batching, each request runs alone with its exact shape. */
    max_batch_size: z.number().int().min(0).max(65_536).default(0),
    inputs: z.array(tensorSpec).min(1),
    outputs: z.array(tensorSpec).min(1),
    /** Hints for the dispatcher's dynamic batcher; the skill itself runs what it receives at once. */
    dynamic_batching: z
      .strictObject({
        max_queue_delay_ms: z.number().min(0).max(10_000).default(0),
        preferred_batch_sizes: z.array(z.number().int().min(1)).default([]),
      })
      .optional(),
    /** Same input, same output: the gateway may cache and coalesce requests. */
    deterministic: z.boolean().default(true),
    /** Which versions serve: the newest n (default 1), all, or a list. */
    version_policy: versionPolicy.default({ latest: 1 }),
  })
  .superRefine((c, ctx) => {
    for (const kind of ['inputs', 'outputs'] as const) {
      const seen = new Set<string>();
      c[kind].forEach((t, i) => {
        if (seen.has(t.name)) ctx.addIssue({ code: 'custom', path: [kind, i, 'name'], message: `"${t.name}" twice` });
        seen.add(t.name);
        if (c.max_batch_size > 0 && t.shape[0] !== -1) {
          ctx.addIssue({
            code: 'custom',
            path: [kind, i, 'shape'],
            message: `${t.name}: with max_batch_size > 0 the first dimension is the batch, written -1 (got ${formatShape(t.shape)})`,
          });
        }
      });
    }
    for (const size of c.dynamic_batching?.preferred_batch_sizes ?? []) {
      if (size > c.max_batch_size) {
        ctx.addIssue({
          code: 'custom',
          path: ['dynamic_batching', 'preferred_batch_sizes'],
          message: `${size} is over max_batch_size ${c.max_batch_size}`,
        });
      }
    }
  });

export type ModelConfig = z.infer<typeof modelConfigSchema>;
export type ModelConfigInput = z.input<typeof modelConfigSchema>;

/** Parses a config.json's text; throws a message naming the file, the field and the problem. */
export function parseModelConfig(text: string, file: string, dirName: string): ModelConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
  }
  const parsed = modelConfigSchema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first?.path.join('.') || '(top level)';
    throw new Error(`${file}: ${where}: ${first?.message ?? 'invalid'}`);
  }
  if (parsed.data.name !== undefined && parsed.data.name !== dirName) {
    throw new Error(`${file}: name "${parsed.data.name}" differs from its directory "${dirName}"`);
  }
  return parsed.data;
}

/** The versions a policy serves, newest first, out of those present. */
export function servedVersions(policy: ModelConfig['version_policy'], present: readonly number[]): number[] {
  const newestFirst = [...present].sort((a, b) => b - a);
  if ('latest' in policy) return newestFirst.slice(0, policy.latest);
  if ('all' in policy) return newestFirst;
  return newestFirst.filter((v) => policy.specific.includes(v));
}
