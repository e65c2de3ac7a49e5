import { z } from 'zod';
import { formatShape, TENSOR_DATATYPES } from '../../tensors.js';
import { PRECISIONS } from './weights.js';

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

/** A variant's name: what a request appends to the model's, `mlp:int8`. */
export const VARIANT_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;

const variantSpec = z.strictObject({
  /** What the file stores most of its weights in; checked against the file when it is loaded. */
  precision: z.enum(PRECISIONS),
  /** The file in each version directory, e.g. `model.int8.onnx`. */
  file: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,122}\.onnx$/, 'a file name in the version directory, ending in .onnx'),
});

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
    /**
     * Files of the same model in other precisions, by variant name, each in every version
     * directory. Without it the model has one file, `model.onnx`.
     */
    variants: z.record(z.string(), variantSpec).optional(),
    /** The variant a request that names none gets; default: the first listed. */
    default_variant: z.string().optional(),
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
    const variants = Object.keys(c.variants ?? {});
    if (c.variants && variants.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['variants'], message: 'name at least one variant, or leave it out' });
    }
    if (c.default_variant !== undefined && !variants.includes(c.default_variant)) {
      ctx.addIssue({
        code: 'custom',
        path: ['default_variant'],
        message: `"${c.default_variant}" is not one of the variants (${variants.join(', ') || 'none declared'})`,
      });
    }
    const files = new Map<string, string>();
    for (const [name, v] of Object.entries(c.variants ?? {})) {
      if (!VARIANT_NAME.test(name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['variants', name],
          message: 'a variant name is a-z, 0-9, "_" or "-" (up to 32), starting with a letter or digit',
        });
      }
      const other = files.get(v.file);
      if (other)
        ctx.addIssue({
          code: 'custom',
          path: ['variants', name, 'file'],
          message: `${v.file} is variant "${other}"'s file too`,
        });
      files.set(v.file, name);
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

/** One file of a model: a declared variant, or the model's only file when it declares none. */
export interface VariantSpec {
  /** The variant's name; undefined for a model that declares no variants. */
  name?: string;
  file: string;
  /** Declared (and checked); undefined when the model declares no variants. */
  precision?: (typeof PRECISIONS)[number];
  isDefault: boolean;
}

/** The model's files, its default variant first. */
export function variantSpecs(config: ModelConfig): VariantSpec[] {
  if (!config.variants) return [{ file: 'model.onnx', isDefault: true }];
  const entries = Object.entries(config.variants);
  const chosen = config.default_variant ?? entries[0]![0];
  return entries
    .map(([name, v]) => ({ name, file: v.file, precision: v.precision, isDefault: name === chosen }))
    .sort((a, b) => Number(b.isDefault) - Number(a.isDefault));
}

/** The versions a policy serves, newest first, out of those present. */
export function servedVersions(policy: ModelConfig['version_policy'], present: readonly number[]): number[] {
  const newestFirst = [...present].sort((a, b) => b - a);
  if ('latest' in policy) return newestFirst.slice(0, policy.latest);
  if ('all' in policy) return newestFirst;
  return newestFirst.filter((v) => policy.specific.includes(v));
}
