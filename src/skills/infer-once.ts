import type { AppError } from '../errors/index.js';
import type { InferItem, SkillAnswer, SkillOutput } from './contract.js';
import type { SkillClientPool } from './client-pool.js';
import { fromItemError } from './grpc-errors.js';
import type { WireInferRequest, WireInferResponse } from './proto.js';

/** One item's outcome from a skill: its job result, or its item-level error. */
export type ItemOutcome = { ok: true; value: SkillAnswer } | { ok: false; error: AppError };

/**
 * One item through the skill pool: builds the gRPC request, picks the replica, turns an
 * item-level error into an AppError and the reply into a job result. Shared by the dispatcher
 * and by the gateway's direct path. The call ends by `deadlineAt` (epoch ms).
 */
export async function inferOnce(
  pool: SkillClientPool,
  skill: string,
  id: string,
  item: InferItem,
  deadlineAt: number,
): Promise<SkillAnswer> {
  const req = toWireRequest(id, item);
  const t0 = performance.now();
  const res = await pool.withReplica(
    skill,
    (c) => c.infer(req, Math.max(1, deadlineAt - Date.now())),
    deadlineAt - Date.now(),
  );
  const outcome = fromWireResponse(res, skill, performance.now() - t0, 1);
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}

/** The gRPC request for one item (used for Infer and for each item of InferBatch). */
export function toWireRequest(id: string, item: InferItem): WireInferRequest {
  return {
    id,
    ...(item.tensors ? { tensors: { tensors: item.tensors } } : { text: item.text ?? '' }),
    parameters: {
      task: item.task,
      maxTokens: item.maxTokens,
      temperature: item.temperature,
      modelVersion: item.modelVersion,
    },
  };
}

/**
 * One reply item as a job result, or its item-level error as an AppError. `skillMs` is the
 * call's round trip; `sentItems` the number of items in the call, the batch size when the skill
 * does not report one.
 */
export function fromWireResponse(
  res: WireInferResponse,
  skill: string,
  skillMs: number,
  sentItems: number,
): ItemOutcome {
  if (res.error?.code) return { ok: false, error: fromItemError(res.error, skill) };
  let output: SkillOutput;
  try {
    output = outputOf(res);
  } catch {
    // A reply we cannot read fails its own item, not the others of its batch.
    return { ok: false, error: fromItemError({ code: 'SKILL_ERROR', message: `${skill}: unreadable output` }, skill) };
  }
  return {
    ok: true,
    value: {
      output,
      model: res.model,
      timing: {
        computeMs: (res.timing?.computeUs ?? 0) / 1000,
        skillMs: Math.round(skillMs * 1000) / 1000,
        batchSize: res.timing?.batchSize || sentItems,
      },
    },
  };
}

function outputOf(res: WireInferResponse): SkillOutput {
  switch (res.output) {
    case 'json':
      return { json: JSON.parse(res.json ?? 'null') };
    case 'tensors':
      return { tensors: res.tensors?.tensors ?? [] };
    default:
      return { text: res.text ?? '' };
  }
}
