import type { SkillAnswer } from '../skills/contract.js';
import type { InferJobData } from './job.js';
import type { SkillClientPool } from '../skills/client-pool.js';
import { fromWireResponse, toWireRequest } from '../skills/infer-once.js';

/**
 * One item through a skill's InferStream: each text delta to `onDelta` as the skill sends it;
 * resolves with the whole result (as {@link inferOnce} does). No failover to another replica: once
 * deltas have gone out, a second replica would send them again from the start.
 */
export async function inferStreamOnce(
  pool: Pick<SkillClientPool, 'pick'>,
  skill: string,
  id: string,
  item: InferJobData['item'],
  deadlineMs: number,
  onDelta: (text: string) => void,
  signal?: AbortSignal,
): Promise<SkillAnswer> {
  const t0 = performance.now();
  const client = await pool.pick(skill);
  const res = await client.inferStream(toWireRequest(id, item), deadlineMs, onDelta, signal);
  const outcome = fromWireResponse(res, skill, performance.now() - t0, 1);
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}
