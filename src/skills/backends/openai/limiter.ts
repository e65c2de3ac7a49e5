/**
 * At most `max` tasks at once; the rest wait in order. A waiter whose signal fires leaves the
 * queue (its caller has gone), so a stalled upstream cannot pile up abandoned work.
 */
export function createLimiter(max: number) {
  let active = 0;
  const waiting: { start: () => void; signal?: AbortSignal }[] = [];

  function next(): void {
    while (active < max && waiting.length > 0) {
      const w = waiting.shift()!;
      if (w.signal?.aborted) continue;
      active++;
      w.start();
    }
  }

  return {
    async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
      if (active >= max) {
        await new Promise<void>((resolve, reject) => {
          const entry = { start: resolve, signal };
          waiting.push(entry);
          signal?.addEventListener(
            'abort',
            () => {
              const i = waiting.indexOf(entry);
              if (i >= 0) waiting.splice(i, 1);
              reject(signal.reason);
            },
            { once: true },
          );
        });
      } else {
        active++;
      }
      try {
        return await task();
      } finally {
        active--;
        next();
      }
    },
  };
}
