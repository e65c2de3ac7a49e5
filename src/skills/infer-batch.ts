import { AppError } from '../errors/index.js';
import type { InferItem } from './contract.js';
import type { SkillClientPool } from './client-pool.js';
import { fromWireResponse, type ItemOutcome, toWireRequest } from './infer-once.js';

/** What one InferBatch call gave: each item's outcome, in item order, and the batch's timings. */
export interface BatchOutcome {
  items: ItemOutcome[];
  /** Model time of the whole batch, as the skill reported it. */
  computeMs: number;
  /** gRPC round trip of the call. */
  skillMs: number;
}

/**
 * Many items in one InferBatch call through the skill pool, with the same request and reply
 * mapping as {@link inferOnce}. A failing item comes back as its own error; the call throws
 * (an AppError) only when the whole call fails. The call ends by `deadlineAt` (epoch ms).
 */
export async function inferBatch(
  pool: SkillClientPool,
  skill: string,
  items: readonly { id: string; item: InferItem }[],
  deadlineAt: number,
): Promise<BatchOutcome> {
  const reqs = items.map(({ id, item }) => toWireRequest(id, item));
  const t0 = performance.now();
  const res = await pool.withReplica(
    skill,
    (c) => c.inferBatch(reqs, Math.max(1, deadlineAt - Date.now())),
    deadlineAt - Date.now(),
  );
  const skillMs = performance.now() - t0;
  return {
    items: reqs.map((req, i): ItemOutcome => {
      const reply = res.items[i];
      // The contract keeps item order; a reply that does not answer this item fails only the item.
      if (!reply || (reply.id !== '' && reply.id !== req.id)) {
        return {
          ok: false,
          error: new AppError('SKILL_ERROR', `${skill}: the batch reply did not answer this item`, { skill }),
        };
      }
      return fromWireResponse(reply, skill, skillMs, reqs.length);
    }),
    computeMs: (res.timing?.computeUs ?? 0) / 1000,
    skillMs,
  };
}
