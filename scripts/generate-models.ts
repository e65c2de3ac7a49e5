/**
 * Writes the ONNX models this project generates into a model repository (Triton's layout):
 * `<dir>/<model>/config.json` and `<dir>/<model>/1/model.onnx`, with the FP16 and INT8 variants
 * beside it (`model.fp16.onnx`, `model.int8.onnx`) for the models that have them. Weights come
 * from a seeded PRNG, so every run writes the same bytes; files already up to date are left alone.
 *
 *   npm run models                 # into MODEL_REPOSITORY (default models/)
 *   npm run models -- /tmp/repo    # elsewhere
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config/index.js';
import { type GeneratedModel, generatedModels } from './models/definitions.js';

function writeIfChanged(file: string, bytes: Uint8Array | string): boolean {
  const next = typeof bytes === 'string' ? Buffer.from(bytes) : Buffer.from(bytes);
  try {
    if (readFileSync(file).equals(next)) return false;
  } catch {
    // missing: write it
  }
  // Into place by rename: a skill loading the model meanwhile reads the old file or the new one.
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, next);
  renameSync(tmp, file);
  return true;
}

/** Writes `model` as `version` under `repository`; returns the files it changed. */
export function writeModel(repository: string, model: GeneratedModel, version = 1): string[] {
  const dir = join(repository, model.name);
  mkdirSync(join(dir, String(version)), { recursive: true });
  const changed: string[] = [];
  const configFile = join(dir, 'config.json');
  if (writeIfChanged(configFile, `${JSON.stringify(model.config, null, 2)}\n`)) changed.push(configFile);
  for (const { file, onnx } of [{ file: 'model.onnx', onnx: model.onnx }, ...(model.files ?? [])]) {
    const path = join(dir, String(version), file);
    if (writeIfChanged(path, onnx)) changed.push(path);
  }
  return changed;
}

/** Writes every generated model into `repository`; returns the files it changed. */
export function generateModels(repository: string): string[] {
  return generatedModels.flatMap((make) => writeModel(repository, make()));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const repository = resolve(process.argv[2] ?? loadConfig().MODEL_REPOSITORY);
  const changed = generateModels(repository);
  process.stdout.write(
    changed.length > 0
      ? `models: wrote ${changed.map((f) => f.slice(repository.length + 1)).join(', ')} in ${repository}\n`
      : `models: ${repository} is up to date\n`,
  );
}
