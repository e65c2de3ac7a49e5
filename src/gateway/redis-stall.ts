import { AppError } from '../errors/index.js';

/**
 * Throws QUEUE_UNAVAILABLE at once while the guard knows Redis is failing or hung, for work that
 * cannot be done without it (accepting or reading an async job): waiting out a command timeout
 * against a hung Redis would only delay the same answer.
 */
export function queueReachable({ redis }: { redis: Pick<OutageSignal, 'available'> }): void {
  if (!redis.available()) throw new AppError('QUEUE_UNAVAILABLE', undefined, undefined, { retryAfterS: 1 });
}

/** What {@link untilRedisFails} needs of the Redis guard. */
export interface OutageSignal {
  available(): boolean;
  onUnavailable(listener: () => void): () => void;
}

/**
 * `work` (a request waiting for its job through Redis), or QUEUE_UNAVAILABLE as soon as the
 * guard finds Redis failing or hung: the job's completion cannot arrive through a hung Redis, so
 * the request stops waiting (and the caller answers it another way, e.g. straight from the skill)
 * instead of holding on until its deadline. The job itself is not cancelled.
 */
export function untilRedisFails<T>(guard: OutageSignal, work: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const fail = () => reject(new AppError('QUEUE_UNAVAILABLE', 'the job queue stopped answering'));
    // Found failing between the request's admission and now: no point in starting to wait.
    if (!guard.available()) {
      work.catch(() => undefined);
      fail();
      return;
    }
    const stop = guard.onUnavailable(fail);
    work.then(
      (value) => {
        stop();
        resolve(value);
      },
      (err: unknown) => {
        stop();
        reject(err);
      },
    );
  });
}
