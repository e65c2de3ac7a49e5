import type { AppError } from '../errors/index.js';
import type { InferJobData, InferJobResult, JobOutput } from '../queue/job.js';
import type { SkillClientPool } from './client-pool.js';
import { fromItemError } from './grpc-errors.js';
import type { WireInferRequest, WireInferResponse } from './proto.js';

/** One item's outcome from a skill: its job result, or its item-level error. */
export type ItemOutcome = { ok: true; value: InferJobResult } | { ok: false; error: AppError };

/**
 * One item through the skill pool: builds the gRPC request, picks the replica, turns an
 * item-level error into an AppError and the reply into a job result. Shared by the dispatcher
 * and by the gateway's direct (degraded) path. `queueMs` is left at 0 for the caller to set.
 */
export async function inferOnce(
  pool: SkillClientPool,
  skill: string,
  id: string,
  item: InferJobData['item'],
  deadlineMs: number,
): Promise<InferJobResult> {
  const req = toWireRequest(id, item);
  const t0 = performance.now();
  const res = await pool.withReplica(skill, (c) => c.infer(req, deadlineMs));
  const outcome = fromWireResponse(res, skill, performance.now() - t0, 1);
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}

/** The gRPC request for one item (used for Infer and for each item of InferBatch). */
export function toWireRequest(id: string, item: InferJobData['item']): WireInferRequest {
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
  let output: JobOutput;
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
        queueMs: 0,
        computeMs: (res.timing?.computeUs ?? 0) / 1000,
        skillMs: Math.round(skillMs * 1000) / 1000,
        batchSize: res.timing?.batchSize || sentItems,
      },
    },
  };
}

function outputOf(res: WireInferResponse): JobOutput {
  switch (res.output) {
    case 'json':
      return { json: JSON.parse(res.json ?? 'null') };
    case 'tensors':
      return { tensors: res.tensors?.tensors ?? [] };
    default:
      return { text: res.text ?? '' };
  }
}
