import { AppError } from '../errors/index.js';
import type { RegistrySnapshot, SkillInfo } from '../skills/registry.js';

/** What an OpenAI model id is served by. */
export interface ServedModel {
  /** The id clients send as `model`. */
  id: string;
  skill: string;
  /** The skill's task (for a model repository, the model's name). */
  task: string;
  kind: 'embedding' | 'generation';
  /** The embedding takes token ids, not text (a model without a tokenizer). */
  tokenInput?: boolean;
  /** Epoch s of the skill's oldest live replica: OpenAI's `created`. */
  created: number;
}

/**
 * Every model the cluster can serve on the OpenAI-compatible routes, from the skill catalogue:
 * the nlp skill's word-vector embedding (`nlp-embed`), the ONNX repository's `embedder`
 * (`onnx/embedder`, token ids in), and each upstream model of an openai-backed skill under its
 * own name. A skill with no live replica is still listed (it answers 503, not 404), as on
 * /v1/skills.
 */
export function servedModels(snapshot: RegistrySnapshot): ServedModel[] {
  const out: ServedModel[] = [];
  for (const info of [...snapshot.catalogue.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const created = createdOf(snapshot, info);
    if (info.backend === 'nlp' && info.tasks.includes('embed')) {
      out.push({ id: `${info.name}-embed`, skill: info.name, task: 'embed', kind: 'embedding', created });
    }
    if (info.backend === 'onnx' && info.models?.some((m) => m.name === 'embedder')) {
      out.push({
        id: `${info.name}/embedder`,
        skill: info.name,
        task: 'embedder',
        kind: 'embedding',
        tokenInput: true,
        created,
      });
    }
    if (info.backend === 'openai') {
      const at = info.model.lastIndexOf('@');
      const id = at > 0 ? info.model.slice(0, at) : info.model;
      out.push({ id, skill: info.name, task: info.defaultTask, kind: 'generation', created });
    }
  }
  return out;
}

function createdOf(snapshot: RegistrySnapshot, info: SkillInfo): number {
  const starts = snapshot.live.filter((r) => r.name === info.name).map((r) => r.startedAt);
  return starts.length > 0 ? Math.floor(Math.min(...starts) / 1000) : 0;
}

/** OpenAI's model object. */
export function modelObject(m: ServedModel) {
  return { id: m.id, object: 'model' as const, created: m.created, owned_by: m.skill };
}

/** The model a request names, of the kind the route serves; otherwise 404 (unknown) or 400 (wrong kind). */
export function findModel(snapshot: RegistrySnapshot, id: unknown, kind: ServedModel['kind']): ServedModel {
  if (typeof id !== 'string' || id.length === 0) {
    throw new AppError('BAD_REQUEST', 'model: required, a string naming a model from GET /v1/models', {
      field: 'model',
    });
  }
  const models = servedModels(snapshot);
  const found = models.find((m) => m.id === id);
  if (!found) {
    throw new AppError('MODEL_NOT_FOUND', `The model \`${id.slice(0, 100)}\` does not exist`, {
      field: 'model',
      models: models.map((m) => m.id),
    });
  }
  if (found.kind !== kind) {
    throw new AppError(
      'BAD_REQUEST',
      `model: ${found.id} is ${found.kind === 'embedding' ? 'an embedding' : 'a generation'} model`,
      {
        field: 'model',
      },
    );
  }
  return found;
}
