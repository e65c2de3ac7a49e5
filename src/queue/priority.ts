import type { Tier } from '../auth/key-store.js';
import type { Config } from '../config/index.js';

/** BullMQ's largest priority (2^21 - 1); 1 is served first. */
export const MAX_PRIORITY = 2_097_151;
const DAY_MS = 86_400_000;

export interface PriorityPolicy {
  /** Head start by tier: a job counts as if enqueued this much later. */
  tierDelayMs: Record<Tier, number>;
  /** Each job the tenant already submitted to the skill in the current window delays the next by this. */
  perJobBacklogMs: number;
  /** Width of one priority step. */
  resolutionMs: number;
}

export const defaultPriorityPolicy: PriorityPolicy = {
  tierDelayMs: { premium: 0, standard: 1_000, free: 5_000 },
  perJobBacklogMs: 20,
  resolutionMs: 50,
};

/**
 * The BullMQ priority of a job: earliest *virtual* enqueue time first, where the virtual time is
 * the real one plus the tier's delay plus the tenant's recent backlog. So under load premium work
 * goes first, yet a free job that has waited longer than the tier gap goes before new premium
 * work (aging: no tier starves), and a tenant flooding a skill pushes only its own later jobs back
 * (no tenant monopolises it). Times are taken within the UTC day so they fit BullMQ's 21-bit
 * range at 50 ms steps; for the few seconds after midnight new jobs may overtake older ones.
 */
export function priorityFor(
  opts: { tier: Tier; tenantBacklog: number; now: number },
  policy = defaultPriorityPolicy,
): number {
  const virtualMs =
    (opts.now % DAY_MS) + policy.tierDelayMs[opts.tier] + Math.max(0, opts.tenantBacklog) * policy.perJobBacklogMs;
  return Math.min(MAX_PRIORITY, Math.max(1, Math.floor(virtualMs / policy.resolutionMs) + 1));
}

/** The policy configured by PRIORITY_TIER_DELAYS_MS and PRIORITY_BACKLOG_MS. */
export function priorityPolicy(config: Config): PriorityPolicy {
  return {
    tierDelayMs: config.PRIORITY_TIER_DELAYS_MS as Record<Tier, number>,
    perJobBacklogMs: config.PRIORITY_BACKLOG_MS,
    resolutionMs: defaultPriorityPolicy.resolutionMs,
  };
}
