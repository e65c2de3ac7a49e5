import type { Registry } from 'prom-client';
import type { Config } from '../config/index.js';
import { METRICS } from '../observability/catalogue.js';
import type { Logger } from '../observability/logger.js';
import { gauge } from '../observability/metrics.js';
import { SkillClientPool } from './client-pool.js';
import type { CachedRegistry } from './registry.js';

/** Breaker states as the product brief numbers them (as for the Redis breaker). */
const STATE_VALUE = { closed: 0, open: 1, 'half-open': 2 } as const;

/**
 * The client pool a dispatcher or a gateway calls skills through, configured from SKILL_* and
 * with its breakers exported (`skillserve_skill_breaker_state{skill,replica}`) and every
 * transition logged. One construction for both roles, so both break circuits alike.
 */
export function createSkillPool(deps: {
  config: Config;
  registry: CachedRegistry;
  logger: Logger;
  metrics: Registry;
  /** gRPC channels per replica; SKILL_CLIENT_CHANNELS when unset. */
  channels?: number;
}): SkillClientPool {
  const { config, logger } = deps;
  const pool = new SkillClientPool(deps.registry, {
    channels: deps.channels ?? config.SKILL_CLIENT_CHANNELS,
    keepaliveMs: config.SKILL_KEEPALIVE_MS,
    breaker: {
      errorPercent: config.SKILL_BREAKER_ERROR_PERCENT,
      minCalls: config.SKILL_BREAKER_MIN_CALLS,
      windowMs: config.SKILL_BREAKER_WINDOW_MS,
      resetMs: config.SKILL_BREAKER_RESET_MS,
    },
    // Every transition at warn, closing included: at the usual LOG_LEVEL=warn the log then shows
    // both when a replica was taken out and when it came back.
    onBreakerChange: ({ skill, replica, state }) =>
      logger.warn({ skill, replica, state }, 'skill replica circuit breaker'),
  });
  gauge(deps.metrics, METRICS.skillBreakerState, function collect() {
    this.reset();
    for (const b of pool.breakerStates()) this.set({ skill: b.skill, replica: b.replica }, STATE_VALUE[b.state]);
  });
  return pool;
}
