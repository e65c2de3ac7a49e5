import type { Logger } from '../observability/logger.js';

export interface ShutdownStep {
  name: string;
  run: () => Promise<unknown> | unknown;
}

/**
 * Runs `steps` in order on SIGTERM or SIGINT (or when the supervising parent goes away),
 * keeping on past a failing step, and exits. The whole sequence is bounded by `timeoutMs`:
 * past it the process exits anyway rather than hang.
 */
export function handleShutdown(
  logger: Logger,
  timeoutMs: number,
  steps: ShutdownStep[],
): (reason: string) => Promise<void> {
  let started: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    started ??= (async () => {
      logger.info({ reason }, 'shutting down');
      const timer = setTimeout(() => {
        logger.error({ timeoutMs }, 'shutdown took too long; exiting');
        process.exit(1);
      }, timeoutMs);
      timer.unref();
      let failed = false;
      for (const step of steps) {
        try {
          await step.run();
        } catch (err) {
          failed = true;
          logger.error({ err, step: step.name }, 'shutdown step failed');
        }
      }
      clearTimeout(timer);
      logger.info('stopped');
      process.exit(failed ? 1 : 0);
    })();
    return started;
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  // A child of the local supervisor has an IPC channel; it closes when the supervisor dies,
  // even by SIGKILL, so no role outlives its supervisor.
  // A supervisor that died while this process was still starting closed the channel before this
  // handler existed: stop now rather than live on as an orphan.
  if (process.send) {
    if (process.connected) process.once('disconnect', () => void shutdown('supervisor gone'));
    else void shutdown('supervisor gone');
  }
  return shutdown;
}
