import type { InferJobData } from '../queue/job.js';
import type { SkillAnswer } from '../skills/contract.js';

/** deps.ts's DirectCall (not imported from there: deps.ts names this class). */
type DirectCall = (
  skill: string,
  requestId: string,
  item: InferJobData['item'],
  deadlineAt: number,
) => Promise<SkillAnswer>;

interface Listener {
  onDelta: (text: string) => void;
  signal: AbortSignal;
}

/**
 * Streamed generations a gateway computes without the queue (while Redis is down; a stream never
 * takes the idle bypass): their deltas go straight from the gRPC stream to the waiting response,
 * in process, instead of through a Redis token stream. The route listens under its request id; the direct
 * call looks the listener up under the same id.
 */
export class DirectStreams {
  private readonly listeners = new Map<string, Listener>();

  /** Deltas of request `requestId`'s direct call go to `onDelta`; `signal` cancels the call. */
  listen(requestId: string, onDelta: (text: string) => void, signal: AbortSignal): () => void {
    this.listeners.set(requestId, { onDelta, signal });
    return () => this.listeners.delete(requestId);
  }

  /**
   * The gateway's direct call: a streamed item with a listener goes through `stream`, everything
   * else through `once`.
   */
  direct(
    once: DirectCall,
    stream: (...args: [...Parameters<DirectCall>, (text: string) => void, AbortSignal]) => ReturnType<DirectCall>,
  ): DirectCall {
    return (skill, requestId, item, deadlineAt) => {
      const listener = item.stream ? this.listeners.get(requestId) : undefined;
      if (!listener) return once(skill, requestId, item, deadlineAt);
      return stream(skill, requestId, item, deadlineAt, (text) => listener.onDelta(text), listener.signal);
    };
  }
}
