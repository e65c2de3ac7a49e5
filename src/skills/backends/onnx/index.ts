import type { InferenceSession } from 'onnxruntime-node';
import type { ErrorBody } from '../../../errors/index.js';
import type { BackendItem, BackendResult, ModelState, SkillBackend, SkillDescriptor } from '../../backend.js';
import { chunk, type PreparedItem, prepareItem, splitOutputs, stackFeeds } from './batch.js';
import { firstLine, type ModelVersion, ModelStore, type ModelStoreOptions, type ServedModel } from './model-store.js';

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

/**
 * An ONNX model repository (Triton's layout) on onnxruntime-node, CPU. A request picks the model
 * by `task` (over HTTP: `model`) and may pin `model_version`; otherwise the newest serving version
 * answers. Items for the same model version and shape are stacked along the batch dimension and
 * run together, in runs of at most max_batch_size rows.
 */
export function createOnnxBackend(opts: OnnxBackendOptions): SkillBackend {
  const store = new ModelStore(opts);
  let loaded = false;

  function route(item: BackendItem): Route {
    const model = store.get(item.task);
    if (!model) {
      const names = store.list().map((m) => m.name);
      return bad(`unknown model "${item.task}"; models: ${names.join(', ')}`, { model: item.task, models: names });
    }
    if (item.modelVersion) {
      const pinned = model.versions.find((v) => String(v.version) === item.modelVersion);
      if (!pinned) {
        const versions = model.versions.map((v) => String(v.version));
        return bad(
          `model "${model.name}" has no version "${item.modelVersion}" serving; versions: ${versions.join(', ')}`,
          {
            model: model.name,
            versions,
          },
        );
      }
      return { ok: true, model, version: pinned };
    }
    const version = model.versions.find((v) => v.slot.state !== 'FAILED') ?? model.versions[0];
    if (!version)
      return { ok: false, error: { code: 'SKILL_UNAVAILABLE', message: `model "${model.name}" has no version` } };
    return { ok: true, model, version };
  }

  /** One run; when a stacked run fails, each item runs alone so only the item at fault fails. */
  async function run(session: InferenceSession, g: Group, members: Group['members'], results: BackendResult[]) {
    const label = `${g.model.name}@${g.version.version}`;
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
        model: models.map((m) => `${m.name}@${m.versions[0]?.version ?? '-'}`).join(','),
        tasks: models.map((m) => m.name),
        defaultTask: models[0]?.name ?? '',
        deterministic: models.every((m) => m.config.deterministic),
        models: store.describe(),
      };
    },

    state(): ModelState {
      // A model none of whose versions loads cannot serve: the skill is not healthy.
      if (store.list().some((m) => m.versions.length > 0 && m.versions.every((v) => v.slot.state === 'FAILED'))) {
        return 'FAILED';
      }
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
        const key = `${r.model.name}@${r.version.version}|${prepared.item.stackKey}`;
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
            .catch(() => {
              for (const m of g.members) {
                results[m.index] ??= {
                  ok: false,
                  error: {
                    code: 'SKILL_UNAVAILABLE',
                    message: `${g.model.name}@${g.version.version} could not be loaded`,
                  },
                };
              }
            }),
        ),
      );
      return results;
    },
  };
}
