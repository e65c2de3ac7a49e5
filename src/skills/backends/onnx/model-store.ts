import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';
import { ConfigError } from '../../../config/index.js';
import type { Logger } from '../../../observability/logger.js';
import type { ModelDescriptor } from '../../backend.js';
import { ModelSlot } from '../../model-slot.js';
import { type ModelConfig, servedVersions } from './model-config.js';
import { scanRepository, type ScannedModel } from './repository.js';
import { openSession, type SessionSettings, signatureProblems } from './session.js';

/** One version of a model that serves: its file and its lazily loaded session. */
export interface ModelVersion {
  model: string;
  version: number;
  slot: ModelSlot<InferenceSession>;
}

/** A model with the versions its policy serves, newest first. */
export interface ServedModel {
  name: string;
  configText: string;
  config: ModelConfig;
  versions: ModelVersion[];
}

export interface ModelStoreOptions extends SessionSettings {
  repository: string;
  /** Models to host; empty: every model in the repository. */
  only: readonly string[];
  idleUnloadMs: number;
  logger: Logger;
}

/** An error's first line, at most 300 characters: enough to say what failed, never a dump. */
export function firstLine(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split('\n')[0]!.slice(0, 300);
}

/**
 * The models of a repository and their serving versions. `prepare` reads the repository and
 * checks every serving version against its config (fatal when wrong); `refresh` re-reads it
 * while serving: a new version takes over and the one it replaces drains (calls in flight
 * finish on it) and unloads; a broken new version is logged and left out.
 */
export class ModelStore {
  private readonly models = new Map<string, ServedModel>();
  /** Versions that are retired but still finishing their calls. */
  private readonly draining = new Set<ModelVersion>();
  /** Files that failed their check, by path and mtime: tried again only once the file changes. */
  private readonly rejected = new Set<string>();
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
    for (const scanned of scan.models) {
      const served = servedVersions(scanned.config.version_policy, [...scanned.versions.keys()]);
      if (served.length === 0 && scanned.versions.size > 0) {
        problems.push(
          `${join(this.opts.repository, scanned.name)}: version_policy serves none of the versions present`,
        );
      }
      for (const v of served) problems.push(...(await this.check(scanned, v)));
    }
    if (problems.length > 0) throw new ConfigError(problems);
    for (const scanned of scan.models) this.models.set(scanned.name, this.build(scanned, [...scanned.versions.keys()]));
    this.prepared = true;
  }

  /** Re-reads the repository and applies what changed. Concurrent calls share one pass. */
  refresh(): Promise<void> {
    this.refreshing ??= this.rescan().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** Waits for calls in flight on every version, then unloads every session. */
  async unloadAll(): Promise<void> {
    const versions = [...this.models.values()].flatMap((m) => m.versions);
    await Promise.all([...versions, ...this.draining].map((v) => v.slot.unload()));
  }

  /** Each model's signature and the state of each version, newest first. */
  describe(): ModelDescriptor[] {
    return this.list().map(({ name, config, versions }) => ({
      name,
      inputs: config.inputs,
      outputs: config.outputs,
      maxBatchSize: config.max_batch_size,
      ...(config.dynamic_batching
        ? {
            dynamicBatching: {
              maxQueueDelayMs: config.dynamic_batching.max_queue_delay_ms,
              preferredBatchSizes: config.dynamic_batching.preferred_batch_sizes,
            },
          }
        : {}),
      deterministic: config.deterministic,
      versions: [
        ...versions.map((v) => ({ version: String(v.version), state: v.slot.state })),
        ...[...this.draining]
          .filter((v) => v.model === name)
          .map((v) => ({ version: String(v.version), state: 'DRAINING' as const })),
      ],
    }));
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
      const candidates = servedVersions(scanned.config.version_policy, [...scanned.versions.keys()]);
      const usable: number[] = [];
      for (const v of candidates) {
        const known = current?.configText === scanned.configText && current.versions.some((x) => x.version === v);
        if (known || (await this.check(scanned, v)).length === 0) usable.push(v);
      }
      if (usable.length === 0) continue; // nothing that works: keep what serves now
      if (current?.configText === scanned.configText) {
        this.update(current, usable);
      } else {
        this.models.set(scanned.name, this.build(scanned, usable));
        for (const v of current?.versions ?? []) this.retire(v);
        logger.info({ model: scanned.name, versions: usable }, current ? 'model config changed' : 'model added');
      }
    }
    // A version whose load failed is tried again here too, so it recovers without traffic
    // (health reports NOT_SERVING meanwhile, and a balancer may be sending none).
    for (const v of [...this.models.values()].flatMap((m) => m.versions)) {
      if (v.slot.state === 'FAILED') void v.slot.load().catch(() => undefined);
    }
    for (const [name, model] of this.models) {
      if (existsSync(join(repository, name))) continue;
      this.models.delete(name);
      for (const v of model.versions) this.retire(v);
      logger.info({ model: name }, 'model removed');
    }
  }

  /** New versions in `usable` start serving; versions no longer in it drain. */
  private update(model: ServedModel, usable: number[]): void {
    const keep = model.versions.filter((v) => usable.includes(v.version));
    const added = usable
      .filter((v) => !model.versions.some((x) => x.version === v))
      .map((v) => this.version(model.name, v));
    for (const v of model.versions) if (!usable.includes(v.version)) this.retire(v);
    if (added.length === 0 && keep.length === model.versions.length) return;
    model.versions = [...keep, ...added].sort((a, b) => b.version - a.version);
    this.opts.logger.info(
      { model: model.name, versions: model.versions.map((v) => v.version) },
      'model versions changed',
    );
  }

  private build(scanned: ScannedModel, usable: number[]): ServedModel {
    const served = servedVersions(scanned.config.version_policy, usable);
    return {
      name: scanned.name,
      configText: scanned.configText,
      config: scanned.config,
      versions: served.map((v) => this.version(scanned.name, v, scanned.versions.get(v))),
    };
  }

  private version(
    model: string,
    version: number,
    file = join(this.opts.repository, model, String(version), 'model.onnx'),
  ) {
    const { logger } = this.opts;
    const entry: ModelVersion = {
      model,
      version,
      slot: new ModelSlot<InferenceSession>({
        load: () => openSession(file, this.opts),
        unload: (session) => session.release(),
        idleUnloadMs: this.opts.idleUnloadMs,
        onState(state, error) {
          if (state === 'FAILED') logger.error({ model, version, err: error }, 'model version failed to load');
          else logger.info({ model, version, state }, 'model version state');
        },
      }),
    };
    return entry;
  }

  private retire(v: ModelVersion): void {
    this.draining.add(v);
    this.opts.logger.info({ model: v.model, version: v.version, inFlight: v.slot.inFlight }, 'model version draining');
    v.slot
      .retire()
      .catch((err: unknown) => this.opts.logger.warn({ err, model: v.model }, 'unloading a retired version failed'))
      .finally(() => {
        this.draining.delete(v);
        this.opts.logger.info({ model: v.model, version: v.version }, 'model version drained and unloaded');
      });
  }

  /** Opens the version's file once and compares it with the config; returns what is wrong. */
  private async check(scanned: ScannedModel, version: number): Promise<string[]> {
    const file = scanned.versions.get(version)!;
    const key = `${file}:${statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0}:${scanned.configText}`;
    if (this.rejected.has(key)) return [`${file}: rejected before`];
    let problems: string[];
    try {
      const session = await openSession(file, this.opts);
      try {
        problems = signatureProblems(session, scanned.config).map((p) => `${file}: ${p}`);
      } finally {
        await session.release();
      }
    } catch (err) {
      problems = [`${file}: onnxruntime cannot load it (${firstLine(err)})`];
    }
    if (problems.length > 0) {
      this.rejected.add(key);
      if (this.prepared) this.opts.logger.error({ problems }, 'new model version rejected');
    }
    return problems;
  }
}
