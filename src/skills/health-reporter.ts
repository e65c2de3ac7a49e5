import type { HealthImplementation } from 'grpc-health-check';
import type { Logger } from '../observability/logger.js';

/** Whether the skill can serve now, and why not (the reason is logged, never sent to callers). */
export interface HealthVerdict {
  serving: boolean;
  reason: string;
}

export interface HealthReporter {
  /** Re-evaluates now; a change is pushed to every Watch stream. */
  update(): void;
  /** The verdict last reported (undefined before the first evaluation). */
  current(): HealthVerdict | undefined;
  start(): void;
  stop(): void;
}

/**
 * Keeps grpc.health.v1 in step with `probe`: evaluated every `intervalMs` (free memory changes
 * without any event) and whenever `update` is called. Status is set only when it changes, so
 * Watch streams get one message per transition and a status set by hand stays until the next one.
 */
export function createHealthReporter(opts: {
  health: HealthImplementation;
  services: readonly string[];
  probe: () => HealthVerdict;
  intervalMs: number;
  logger: Logger;
}): HealthReporter {
  let last: HealthVerdict | undefined;
  let timer: NodeJS.Timeout | undefined;

  function update(): void {
    const verdict = opts.probe();
    if (last?.serving === verdict.serving) return;
    last = verdict;
    const status = verdict.serving ? 'SERVING' : 'NOT_SERVING';
    for (const service of opts.services) opts.health.setStatus(service, status);
    opts.logger.info({ status, reason: verdict.reason }, 'health changed');
  }

  return {
    update,
    current: () => last,
    start() {
      update();
      timer ??= setInterval(update, opts.intervalMs);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
      update();
    },
  };
}
