/** A promise that did not settle within its time (see {@link settleWithin}). */
export class SettleTimeout extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'SettleTimeout';
  }
}

/**
 * `promise`, or a {@link SettleTimeout} rejection when it has not settled `ms` after the call.
 *
 * A timer that fires late — the process was descheduled on a busy machine, or paused by GC —
 * runs in the event loop's timers phase, before the poll phase reads the sockets whose answers
 * arrived meanwhile. Judging there would blame the dependency for the process's own stall (a
 * burst of false "Redis hung" each time a sibling process starts and eats the CPU). So the
 * verdict waits one more turn (setImmediate runs after the poll phase): an answer that is
 * already in the socket wins.
 */
export function settleWithin<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      setImmediate(() => {
        if (settled) return;
        settled = true;
        reject(new SettleTimeout(ms));
      });
    }, ms);
    promise.then(
      (value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
