import type { InferJobData, InferJobResult, JobOutput } from '../queue/job.js';
import type { SkillClientPool } from './client-pool.js';
import { fromItemError } from './grpc-errors.js';
import type { WireInferRequest, WireInferResponse } from './proto.js';

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
  const req: WireInferRequest = {
    id,
    ...(item.tensors ? { tensors: { tensors: item.tensors } } : { text: item.text ?? '' }),
    parameters: {
      task: item.task,
      maxTokens: item.maxTokens,
      temperature: item.temperature,
      modelVersion: item.modelVersion,
    },
  };
  const t0 = performance.now();
  const res = await pool.withReplica(skill, (c) => c.infer(req, deadlineMs));
  const skillMs = performance.now() - t0;
  if (res.error?.code) throw fromItemError(res.error, skill);
  return {
    output: outputOf(res),
    model: res.model,
    timing: {
      queueMs: 0,
      computeMs: (res.timing?.computeUs ?? 0) / 1000,
      skillMs: Math.round(skillMs * 1000) / 1000,
      batchSize: res.timing?.batchSize ?? 1,
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
