import { stat } from 'node:fs/promises';
import type { ModelConfig, VariantSpec } from './model-config.js';
import { openSession, type SessionSettings, signatureProblems } from './session.js';
import { type Precision, summarizeWeights } from './weights.js';

/** What checking one model file found. */
export interface FileCheck {
  /** Bytes on disk (0 when missing). */
  sizeBytes: number;
  /** The file's modification time, to notice when it is replaced. */
  mtimeMs: number;
  /** The precision of most of its weights (undefined: no weights, or unreadable). */
  precision?: Precision;
  /** What is wrong, each naming the file; empty when it can serve. */
  problems: string[];
}

/** An error's first line, at most 300 characters: enough to say what failed, never a dump. */
export function firstLine(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split('\n')[0]!.slice(0, 300);
}

const count = (n: number) => n.toLocaleString('en-US');

/**
 * Opens `file` once with onnxruntime and compares it with the config: its inputs and outputs
 * (signatureProblems), and for a declared variant the precision its weights are stored in.
 */
export async function checkFile(
  file: string,
  config: ModelConfig,
  spec: VariantSpec,
  settings: SessionSettings,
): Promise<FileCheck> {
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) return { sizeBytes: 0, mtimeMs: 0, problems: [`${file} is missing`] };
  const found: FileCheck = { sizeBytes: info.size, mtimeMs: info.mtimeMs, problems: [] };
  try {
    const session = await openSession(file, settings, 'check');
    try {
      found.problems = signatureProblems(session, config).map((p) => `${file}: ${p}`);
    } finally {
      await session.release();
    }
  } catch (err) {
    found.problems = [`${file}: onnxruntime cannot load it (${firstLine(err)})`];
    return found;
  }
  try {
    const weights = await summarizeWeights(file);
    if (weights.precision) found.precision = weights.precision;
    if (spec.precision && spec.precision !== weights.precision) {
      const total = Object.values(weights.counts).reduce((a, b) => a + b, 0);
      found.problems.push(
        weights.precision
          ? `${file}: config.json declares variant "${spec.name}" as ${spec.precision}, but the file stores its weights in ${weights.precision} (${count(weights.counts[weights.precision]!)} of ${count(total)} values)`
          : `${file}: config.json declares variant "${spec.name}" as ${spec.precision}, but the file holds no weights`,
      );
    }
  } catch (err) {
    found.problems.push(`${file}: its weights cannot be read (${firstLine(err)})`);
  }
  return found;
}
