import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type ModelConfig, parseModelConfig, variantSpecs } from './model-config.js';

const CONFIG_FILE = 'config.json';

/** One model directory as found on disk. */
export interface ScannedModel {
  name: string;
  /** The config file's text, to notice when it changes. */
  configText: string;
  config: ModelConfig;
  /**
   * Version number → its directory, for versions whose default file (`model.onnx`, or the
   * default variant's) is present. The other variants' files are checked when loaded.
   */
  versions: Map<number, string>;
}

export interface RepositoryScan {
  models: ScannedModel[];
  /** What is wrong, one line each, naming the file: fatal at start-up, logged on a rescan. */
  problems: string[];
}

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const VERSION_DIR = /^[1-9][0-9]{0,8}$/;

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/**
 * Reads a model repository in Triton's layout: `<root>/<model>/config.json` and
 * `<root>/<model>/<version>/model.onnx` (or the files of the variants config.json declares),
 * versions being positive integers (other entries are ignored, as Triton does). `only` (if not empty) restricts which models are hosted.
 */
export async function scanRepository(root: string, only: readonly string[] = []): Promise<RepositoryScan> {
  const problems: string[] = [];
  if (!(await isDirectory(root))) {
    return {
      models: [],
      problems: [`MODEL_REPOSITORY: ${root} is not a directory (\`npm run models\` generates the example models)`],
    };
  }
  const entries = (await readdir(root, { withFileTypes: true }))
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
  for (const name of only) {
    if (!entries.includes(name)) problems.push(`ONNX_MODELS: names "${name}" but ${join(root, name)} does not exist`);
  }
  const models: ScannedModel[] = [];
  for (const name of only.length > 0 ? entries.filter((e) => only.includes(e)) : entries) {
    const dir = join(root, name);
    if (!MODEL_NAME.test(name)) {
      problems.push(`${dir}: a model name is letters, digits, "_", "." or "-" (up to 64)`);
      continue;
    }
    const configPath = join(dir, CONFIG_FILE);
    let configText: string;
    let config: ModelConfig;
    try {
      configText = await readFile(configPath, 'utf8');
    } catch {
      problems.push(`${configPath} is missing: every model directory needs one (inputs, outputs, max_batch_size)`);
      continue;
    }
    try {
      config = parseModelConfig(configText, configPath, name);
    } catch (err) {
      problems.push((err as Error).message);
      continue;
    }
    const versions = new Map<number, string>();
    const defaultFile = variantSpecs(config)[0]!.file;
    for (const v of (await readdir(dir)).filter((d) => VERSION_DIR.test(d))) {
      if (!(await isDirectory(join(dir, v)))) continue;
      const file = join(dir, v, defaultFile);
      if (existsSync(file)) versions.set(Number(v), join(dir, v));
      else problems.push(`${file} is missing`);
    }
    if (versions.size === 0 && !problems.some((p) => p.startsWith(`${dir}/`))) {
      problems.push(`${dir} has no version directory with a model (expected ${join(dir, '1', defaultFile)})`);
    }
    models.push({ name, configText, config, versions });
  }
  if (models.length === 0 && problems.length === 0) {
    problems.push(`MODEL_REPOSITORY: ${root} holds no model directory (\`npm run models\` generates the examples)`);
  }
  return { models, problems };
}
