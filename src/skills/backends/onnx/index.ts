import type { InferenceSession } from 'onnxruntime-node';
import type { ErrorBody } from '../../../errors/index.js';
import type { BackendItem, BackendResult, ModelState, SkillBackend, SkillDescriptor } from '../../backend.js';
import { chunk, type PreparedItem, prepareItem, splitOutputs, stackFeeds } from './batch.js';
import {
  firstLine,
  type ModelVersion,
  ModelStore,
  type ModelStoreOptions,
  type ServedModel,
  variantVersions,
  versionLabel,
} from './model-store.js';

export type OnnxBackendOptions = ModelStoreOptions;

interface Group {
  model: ServedModel;
  version: ModelVersion;
  members: { index: number; item: PreparedItem }[];
}

type Route = { ok: true; model: ServedModel; version: ModelVersion } | { ok: false; error: ErrorBody };

function bad(message: string, details: Record<string, unknown>): { ok: false; error: ErrorBody } {
  return { ok: false, error: { code: 'BAD_REQUEST', message, details } };
}

function unavailable(message: string, model: string): { ok: false; error: ErrorBody } {
  return { ok: false, error: { code: 'SKILL_UNAVAILABLE', message, details: { model } } };
}

/** The names a request may give a model: `mlp` (its default variant) and `mlp:<variant>` for each, as declared. */
function taskNames(m: ServedModel): string[] {
  return [m.name, ...Object.keys(m.config.variants ?? {}).map((v) => `${m.name}:${v}`)];
}

/**
 * An ONNX model repository (Triton's layout) on onnxruntime-node, CPU. A request picks the model
 * by `task` (over HTTP: `model`), `mlp` for its default variant or `mlp:int8` for a named one,
 * and may pin `model_version`; otherwise the newest serving version answers. Items for the same
 * file and shape are stacked along the batch dimension and run together, in runs of at most
 * max_batch_size rows.
 */
export function createOnnxBackend(opts: OnnxBackendOptions): SkillBackend {
  const store = new ModelStore(opts);
  let loaded = false;

  function route(item: BackendItem): Route {
    const colon = item.task.indexOf(':');
    const name = colon < 0 ? item.task : item.task.slice(0, colon);
    const model = store.get(name);
    if (!model) {
      const names = store.list().map((m) => m.name);
      return bad(`unknown model "${name}"; models: ${names.join(', ')}`, { model: name, models: names });
    }
    const index = colon < 0 ? 0 : model.specs.findIndex((s) => s.name === item.task.slice(colon + 1));
    if (index < 0 || (colon >= 0 && !model.config.variants)) {
      const variants = model.config.variants ? taskNames(model).slice(1) : [];
      return bad(
        variants.length > 0
          ? `model "${name}" has no variant "${item.task.slice(colon + 1)}"; variants: ${variants.join(', ')}`
          : `model "${name}" has no variants; name it "${name}"`,
        { model: name, variants },
      );
    }
    const versions = variantVersions(model, index);
    if (item.modelVersion) {
      const pinned = versions.find((v) => String(v.version) === item.modelVersion);
      if (!pinned) {
        const numbers = versions.map((v) => String(v.version));
        return bad(
          `model "${item.task}" has no version "${item.modelVersion}" serving; versions: ${numbers.join(', ')}`,
          {
            model: item.task,
            versions: numbers,
          },
        );
      }
      if (pinned.problem) return unavailable(`${versionLabel(pinned)} cannot serve: ${pinned.problem}`, item.task);
      return { ok: true, model, version: pinned };
    }
    const usable = versions.filter((v) => !v.problem);
    const version = usable.find((v) => v.slot.state !== 'FAILED') ?? usable[0];
    if (!version) {
      const why = versions[0]?.problem;
      return unavailable(
        why ? `${versionLabel(versions[0]!)} cannot serve: ${why}` : `model "${item.task}" has no version`,
        item.task,
      );
    }
    return { ok: true, model, version };
  }

  /** One run; when a stacked run fails, each item runs alone so only the item at fault fails. */
  async function run(session: InferenceSession, g: Group, members: Group['members'], results: BackendResult[]) {
    const label = versionLabel(g.version);
    try {
      const out = await session.run(
        await stackFeeds(
          g.model.config,
          members.map((m) => m.item),
        ),
      );
      const perItem = splitOutputs(
        g.model.config,
        out,
        members.map((m) => m.item),
      );
      members.forEach((m, i) => {
        results[m.index] = { ok: true, output: { tensors: perItem[i]! }, model: label };
      });
    } catch (err) {
      if (members.length > 1) {
        for (const m of members) await run(session, g, [m], results);
        return;
      }
      const reason = firstLine(err);
      results[members[0]!.index] = {
        ok: false,
        error: {
          code: 'BAD_REQUEST',
          message: `${label} could not compute this input: ${reason}`,
          details: { model: g.model.name },
        },
      };
    }
  }

  return {
    describe(): SkillDescriptor {
      const models = store.list();
      return {
        backend: 'onnx',
        // The default variant is part of what answers a request for the model: it names the
        // served model (and so the cache key) along with the version.
        model: models.map((m) => (m.versions[0] ? versionLabel(m.versions[0].files[0]!) : `${m.name}@-`)).join(','),
        tasks: models.flatMap(taskNames),
        defaultTask: models[0]?.name ?? '',
        deterministic: models.every((m) => m.config.deterministic),
        models: store.describe(),
      };
    },

    state(): ModelState {
      // A model none of whose versions loads cannot serve: the skill is not healthy. Only the
      // default variant counts: a broken variant is refused alone.
      const broken = (m: ServedModel) => {
        const files = variantVersions(m);
        return files.length > 0 && files.every((f) => f.slot.state === 'FAILED');
      };
      if (store.list().some(broken)) return 'FAILED';
      return loaded ? 'READY' : 'UNLOADED';
    },

    prepare: () => store.prepare(),

    async load() {
      if (!store.isPrepared) await store.prepare();
      loaded = true;
    },

    async unload() {
      loaded = false;
      await store.unloadAll();
    },

    refresh: () => store.refresh(),

    async inferBatch(items: readonly BackendItem[]): Promise<BackendResult[]> {
      const results: BackendResult[] = new Array(items.length);
      const groups = new Map<string, Group>();
      items.forEach((item, index) => {
        const r = route(item);
        if (!r.ok) {
          results[index] = r;
          return;
        }
        const prepared = prepareItem(r.model.name, r.model.config, item.tensors);
        if (!prepared.ok) {
          results[index] = prepared;
          return;
        }
        const key = `${versionLabel(r.version)}|${prepared.item.stackKey}`;
        const group = groups.get(key) ?? { model: r.model, version: r.version, members: [] };
        group.members.push({ index, item: prepared.item });
        groups.set(key, group);
      });
      // `use` is entered synchronously for every group, so a version retired meanwhile
      // still counts these calls as in flight and drains them before it unloads.
      await Promise.all(
        [...groups.values()].map((g) =>
          g.version.slot
            .use(async (session) => {
              for (const members of chunk(g.members, g.model.config.max_batch_size, (m) => m.item.rows)) {
                await run(session, g, members, results);
              }
            })
            .catch((err: unknown) => {
              const message = `${versionLabel(g.version)} could not be loaded from ${store.relative(g.version.file)}: ${store.relative(firstLine(err))}`;
              for (const m of g.members) {
                results[m.index] ??= { ok: false, error: { code: 'SKILL_UNAVAILABLE', message } };
              }
            }),
        ),
      );
      return results;
    },
  };
}
