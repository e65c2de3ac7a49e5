import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';
import { ConfigError } from '../../../config/index.js';
import type { Logger } from '../../../observability/logger.js';
import type { ModelDescriptor, ModelVersionStatus } from '../../backend.js';
import { ModelSlot } from '../../model-slot.js';
import { checkFile, type FileCheck } from './file-check.js';
import { type ModelConfig, servedVersions, type VariantSpec, variantSpecs } from './model-config.js';
import { scanRepository, type ScannedModel } from './repository.js';
import { openSession, type SessionSettings } from './session.js';
import type { Precision } from './weights.js';

export { firstLine } from './file-check.js';

/** One file of one version of a model (a variant, or the model's only file) and its lazily loaded session. */
export interface ModelVersion {
  model: string;
  /** The declared variant; undefined for a model that declares none. */
  variant?: string;
  version: number;
  file: string;
  /** Declared, or for a model without variants what its weights are stored in. */
  precision?: Precision;
  sizeBytes: number;
  mtimeMs: number;
  /** Why the file failed its check (naming it, relative to the repository): it never loads. */
  problem?: string;
  slot: ModelSlot<InferenceSession>;
}

/** One version of a model: a file per variant, in the order of {@link ServedModel.specs}. */
export interface ServedVersion {
  version: number;
  files: ModelVersion[];
}

/** A model with the versions its policy serves, newest first. */
export interface ServedModel {
  name: string;
  configText: string;
  config: ModelConfig;
  /** Its files' specs, the default variant first. */
  specs: VariantSpec[];
  versions: ServedVersion[];
}

export interface ModelStoreOptions extends SessionSettings {
  repository: string;
  /** Models to host; empty: every model in the repository. */
  only: readonly string[];
  idleUnloadMs: number;
  logger: Logger;
}

/** `mlp:int8@1`, or `classifier@1` for a model without variants: how answers name what computed them. */
export function versionLabel(v: Pick<ModelVersion, 'model' | 'variant' | 'version'>): string {
  return `${v.model}${v.variant ? `:${v.variant}` : ''}@${v.version}`;
}

/** The versions of one variant (by its index in `specs`; 0 is the default), newest first. */
export function variantVersions(model: ServedModel, index = 0): ModelVersion[] {
  return model.versions.map((v) => v.files[index]!);
}

/**
 * The models of a repository and their serving versions. `prepare` reads the repository and
 * checks every serving version against its config (fatal when its default file is wrong; a
 * broken non-default variant is logged, reported and left out while the others serve);
 * `refresh` re-reads it while serving: a new version takes over and the one it replaces
 * drains (calls in flight finish on it) and unloads; a broken new version is logged and left out.
 */
export class ModelStore {
  private readonly models = new Map<string, ServedModel>();
  /** Files that are retired but still finishing their calls. */
  private readonly draining = new Set<ModelVersion>();
  /** Files that failed their check, by path, mtime and config: checked again only once one changes. */
  private readonly rejected = new Map<string, FileCheck>();
  private lastProblems = '';
  private refreshing?: Promise<void>;
  private prepared = false;

  constructor(private readonly opts: ModelStoreOptions) {}

  get isPrepared(): boolean {
    return this.prepared;
  }

  /** Models in the order requests see them (ONNX_MODELS order, else by name). */
  list(): ServedModel[] {
    const names = [...this.models.keys()];
    const order = (n: string) => (this.opts.only.includes(n) ? this.opts.only.indexOf(n) : this.opts.only.length);
    names.sort((a, b) => order(a) - order(b) || a.localeCompare(b));
    return names.map((n) => this.models.get(n)!);
  }

  get(name: string): ServedModel | undefined {
    return this.models.get(name);
  }

  async prepare(): Promise<void> {
    const scan = await scanRepository(this.opts.repository, this.opts.only);
    const problems = [...scan.problems];
    const built: ServedModel[] = [];
    for (const scanned of scan.models) {
      const served = servedVersions(scanned.config.version_policy, [...scanned.versions.keys()]);
      if (served.length === 0 && scanned.versions.size > 0) {
        problems.push(
          `${join(this.opts.repository, scanned.name)}: version_policy serves none of the versions present`,
        );
      }
      const versions: ServedVersion[] = [];
      for (const v of served) {
        const checked = await this.checkVersion(scanned, v);
        if ('fatal' in checked) problems.push(...checked.fatal);
        else versions.push(checked);
      }
      built.push(this.served(scanned, versions));
    }
    if (problems.length > 0) throw new ConfigError(problems);
    for (const model of built) this.models.set(model.name, model);
    this.prepared = true;
  }

  /** Re-reads the repository and applies what changed. Concurrent calls share one pass. */
  refresh(): Promise<void> {
    this.refreshing ??= this.rescan().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** Waits for calls in flight on every file, then unloads every session. */
  async unloadAll(): Promise<void> {
    const files = [...this.models.values()].flatMap((m) => m.versions.flatMap((v) => v.files));
    await Promise.all([...files, ...this.draining].map((f) => f.slot.unload()));
  }

  /** Each model's signature, its variants and the state of each version, newest first. */
  describe(): ModelDescriptor[] {
    return this.list().map((m) => {
      const statuses = (index: number): ModelVersionStatus[] => [
        ...variantVersions(m, index).map((f) => ({
          version: String(f.version),
          state: f.problem ? ('FAILED' as const) : f.slot.state,
          sizeBytes: f.sizeBytes,
          ...(f.problem ? { error: f.problem } : {}),
        })),
        ...[...this.draining]
          .filter((f) => f.model === m.name && f.variant === m.specs[index]!.name)
          .map((f) => ({ version: String(f.version), state: 'DRAINING' as const, sizeBytes: f.sizeBytes })),
      ];
      const newest = m.versions[0]?.files[0];
      const batching = m.config.dynamic_batching;
      return {
        name: m.name,
        inputs: m.config.inputs,
        outputs: m.config.outputs,
        maxBatchSize: m.config.max_batch_size,
        ...(batching
          ? {
              dynamicBatching: {
                maxQueueDelayMs: batching.max_queue_delay_ms,
                preferredBatchSizes: batching.preferred_batch_sizes,
              },
            }
          : {}),
        deterministic: m.config.deterministic,
        versions: statuses(0),
        ...(newest?.precision ? { precision: newest.precision } : {}),
        ...(newest ? { sizeBytes: newest.sizeBytes } : {}),
        ...(m.config.variants
          ? {
              defaultVariant: m.specs[0]!.name!,
              // In the order config.json declares them (specs put the default first).
              variants: Object.keys(m.config.variants).map((name) => {
                const i = m.specs.findIndex((s) => s.name === name);
                return { name, precision: m.specs[i]!.precision!, versions: statuses(i) };
              }),
            }
          : {}),
      };
    });
  }

  private async rescan(): Promise<void> {
    if (!this.prepared) return;
    const { repository, logger } = this.opts;
    const scan = await scanRepository(repository, this.opts.only);
    const text = scan.problems.join('\n');
    if (text !== this.lastProblems && text) logger.warn({ problems: scan.problems }, 'model repository has problems');
    this.lastProblems = text;

    for (const scanned of scan.models) {
      const current = this.models.get(scanned.name);
      const sameConfig = current?.configText === scanned.configText;
      const usable: ServedVersion[] = [];
      for (const v of servedVersions(scanned.config.version_policy, [...scanned.versions.keys()])) {
        const known = sameConfig ? current.versions.find((x) => x.version === v) : undefined;
        if (known) {
          await this.recheckFailedVariants(scanned, known);
          usable.push(known);
          continue;
        }
        const checked = await this.checkVersion(scanned, v);
        if (!('fatal' in checked)) usable.push(checked);
      }
      if (usable.length === 0) continue; // nothing that works: keep what serves now
      if (sameConfig) {
        this.update(current, usable);
      } else {
        this.models.set(scanned.name, this.served(scanned, usable));
        for (const v of current?.versions ?? []) this.retireVersion(v);
        logger.info(
          { model: scanned.name, versions: usable.map((v) => v.version) },
          current ? 'model config changed' : 'model added',
        );
      }
    }
    // A default file whose load failed is tried again here too, so it recovers without traffic
    // (health reports NOT_SERVING meanwhile, and a balancer may be sending none). Other
    // variants do not touch health; their next request tries again.
    for (const f of [...this.models.values()].flatMap((m) => variantVersions(m))) {
      if (f.slot.state === 'FAILED') void f.slot.load().catch(() => undefined);
    }
    for (const [name, model] of this.models) {
      if (existsSync(join(repository, name))) continue;
      this.models.delete(name);
      for (const v of model.versions) this.retireVersion(v);
      logger.info({ model: name }, 'model removed');
    }
  }

  /** `usable` serve from now on (new ones start); versions no longer in it drain. */
  private update(model: ServedModel, usable: ServedVersion[]): void {
    const before = model.versions;
    for (const v of before) if (!usable.includes(v)) this.retireVersion(v);
    model.versions = [...usable].sort((a, b) => b.version - a.version);
    if (model.versions.length === before.length && model.versions.every((v, i) => v === before[i])) return;
    this.opts.logger.info(
      { model: model.name, versions: model.versions.map((v) => v.version) },
      'model versions changed',
    );
  }

  private served(scanned: ScannedModel, versions: ServedVersion[]): ServedModel {
    const { name, configText, config } = scanned;
    return { name, configText, config, specs: variantSpecs(config), versions };
  }

  /**
   * Checks every file of a version. A version whose default file fails cannot serve (`fatal`);
   * a failing non-default variant is kept with its problem, so it is reported and refused
   * while the others serve.
   */
  private async checkVersion(scanned: ScannedModel, version: number): Promise<ServedVersion | { fatal: string[] }> {
    const dir = scanned.versions.get(version)!;
    const files: ModelVersion[] = [];
    for (const spec of variantSpecs(scanned.config)) {
      const file = join(dir, spec.file);
      const found = await this.check(file, scanned, spec);
      if (found.problems.length > 0 && spec.isDefault) return { fatal: found.problems };
      if (found.problems.length > 0) {
        this.opts.logger.error(
          { model: scanned.name, variant: spec.name, version, problems: found.problems },
          'model variant failed its check; the other variants serve',
        );
      }
      files.push(this.file(scanned.name, spec, version, file, found));
    }
    return { version, files };
  }

  /** A known version's failed variants whose file changed since are checked again, and serve when they pass. */
  private async recheckFailedVariants(scanned: ScannedModel, version: ServedVersion): Promise<void> {
    const specs = variantSpecs(scanned.config);
    for (const [i, f] of version.files.entries()) {
      if (!f.problem) continue;
      const mtimeMs = (await stat(f.file).catch(() => undefined))?.mtimeMs ?? 0;
      if (mtimeMs === f.mtimeMs) continue;
      const found = await this.check(f.file, scanned, specs[i]!);
      version.files[i] = this.file(f.model, specs[i]!, f.version, f.file, found);
      if (found.problems.length === 0) {
        this.opts.logger.info({ model: f.model, variant: f.variant, version: f.version }, 'model variant recovered');
      } else {
        this.opts.logger.error(
          { model: f.model, variant: f.variant, version: f.version, problems: found.problems },
          'model variant failed its check; the other variants serve',
        );
      }
    }
  }

  private file(model: string, spec: VariantSpec, version: number, file: string, found: FileCheck): ModelVersion {
    const { logger } = this.opts;
    const precision = spec.precision ?? found.precision;
    const label = versionLabel({ model, variant: spec.name, version });
    return {
      model,
      ...(spec.name ? { variant: spec.name } : {}),
      version,
      file,
      ...(precision ? { precision } : {}),
      sizeBytes: found.sizeBytes,
      mtimeMs: found.mtimeMs,
      ...(found.problems.length > 0 ? { problem: this.relative(found.problems.join('; ')) } : {}),
      slot: new ModelSlot<InferenceSession>({
        load: () => openSession(file, this.opts),
        unload: (session) => session.release(),
        idleUnloadMs: this.opts.idleUnloadMs,
        onState(state, error) {
          if (state === 'FAILED') logger.error({ model: label, file, err: error }, 'model version failed to load');
          else logger.info({ model: label, state }, 'model version state');
        },
      }),
    };
  }

  /** Paths in messages clients may see are relative to the repository. */
  relative(text: string): string {
    return text.split(`${this.opts.repository}${sep}`).join('');
  }

  private retireVersion(v: ServedVersion): void {
    for (const f of v.files) this.retire(f);
  }

  private retire(f: ModelVersion): void {
    this.draining.add(f);
    const label = versionLabel(f);
    this.opts.logger.info({ model: label, inFlight: f.slot.inFlight }, 'model version draining');
    f.slot
      .retire()
      .catch((err: unknown) => this.opts.logger.warn({ err, model: label }, 'unloading a retired version failed'))
      .finally(() => {
        this.draining.delete(f);
        this.opts.logger.info({ model: label }, 'model version drained and unloaded');
      });
  }

  /** Checks a file, once per content and config: a rejected one is not opened again until it changes. */
  private async check(file: string, scanned: ScannedModel, spec: VariantSpec): Promise<FileCheck> {
    const mtime = (await stat(file).catch(() => undefined))?.mtimeMs ?? 0;
    const key = `${file}:${mtime}:${scanned.configText}`;
    const known = this.rejected.get(key);
    if (known) return known;
    const found = await checkFile(file, scanned.config, spec, this.opts);
    if (found.problems.length > 0) {
      this.rejected.set(key, found);
      if (this.prepared && spec.isDefault)
        this.opts.logger.error({ problems: found.problems }, 'new model version rejected');
    }
    return found;
  }
}
