import type { IncomingHttpHeaders } from 'node:http';
import type { Tier } from '../../auth/key-store.js';
import type { LimitDecision } from '../../cache/token-bucket.js';
import type { Config } from '../../config/index.js';
import { AppError } from '../../errors/index.js';
import type { InferJobData } from '../../queue/job.js';
import type { SkillDirectory } from '../deps.js';
import type { RegistrySnapshot, SkillInfo } from '../../skills/registry.js';
import { type InferBody, parseDeadline, skillNamePattern } from '../validation.js';

/** The registry snapshot; a registry that cannot be read is 503 QUEUE_UNAVAILABLE. */
export async function registrySnapshot(skills: SkillDirectory): Promise<RegistrySnapshot> {
  try {
    return await skills.get();
  } catch (err) {
    throw new AppError('QUEUE_UNAVAILABLE', 'the skill registry is not reachable', undefined, { cause: err });
  }
}

/** An inference request checked against the registry: the skill exists and offers the task. */
export interface ResolvedRequest {
  info: SkillInfo;
  item: InferJobData['item'];
  deadlineMs?: number;
  snapshot: RegistrySnapshot;
}

/** Shared by POST /v1/skills/:skill/infer and POST /v1/jobs. */
export function resolveRequest(
  config: Config,
  snapshot: RegistrySnapshot,
  name: string,
  body: InferBody,
  headers: IncomingHttpHeaders,
): ResolvedRequest {
  const info = skillNamePattern.test(name) ? snapshot.catalogue.get(name) : undefined;
  if (!info) {
    throw new AppError('SKILL_NOT_FOUND', `no skill named "${name.slice(0, 64)}"`, {
      skills: [...snapshot.catalogue.keys()].sort(),
    });
  }
  if (body.model !== undefined && !info.models) {
    throw new AppError('BAD_REQUEST', `model: ${name} hosts one model; choose what it does with "task"`, {
      field: 'model',
      tasks: info.tasks,
    });
  }
  // A skill hosting several models (onnx) takes the model's name as its task.
  const task = body.model ?? body.task ?? info.defaultTask;
  if (!info.tasks.includes(task)) {
    if (body.model !== undefined) {
      throw new AppError('BAD_REQUEST', `model: ${name} has no model "${task.slice(0, 64)}"`, {
        field: 'model',
        models: info.tasks,
      });
    }
    throw new AppError('UNKNOWN_TASK', `${name} has no task "${task}"`, { task, tasks: info.tasks });
  }
  const header = headers['x-deadline-ms'];
  const deadlineMs = parseDeadline(
    body.deadline_ms,
    Array.isArray(header) ? header[0] : header,
    config.MAX_DEADLINE_MS,
  );
  return {
    info,
    snapshot,
    deadlineMs,
    item: {
      ...(body.tensors ? { tensors: body.tensors } : { text: body.input }),
      task,
      maxTokens: body.max_tokens ?? 0,
      temperature: body.temperature,
      modelVersion: body.model_version ?? '',
    },
  };
}

/** Where response headers go: an Express Response or a plain node:http ServerResponse. */
export interface HeaderSink {
  setHeader(name: string, value: string): unknown;
}

/** Sets the IETF RateLimit header fields (allowed and refused alike) and refuses over the limit. */
export function enforceLimit(res: HeaderSink, limit: LimitDecision, config: Config, tier: Tier): void {
  res.setHeader('RateLimit-Limit', String(limit.limit));
  res.setHeader('RateLimit-Remaining', String(limit.remaining));
  res.setHeader('RateLimit-Reset', String(limit.resetS));
  if (!limit.allowed) {
    throw new AppError(
      'RATE_LIMITED',
      `rate limit of ${limit.limit} requests per ${config.RATE_LIMIT_WINDOW_S} s for this key and skill`,
      { limit: limit.limit, tier },
      { retryAfterS: limit.retryAfterS },
    );
  }
}
