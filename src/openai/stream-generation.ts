import type { ServerResponse } from 'node:http';
import { AppError } from '../errors/index.js';
import type { GatewayDeps } from '../gateway/deps.js';
import type { Inference } from '../gateway/inference.js';
import { toAppError } from '../gateway/middleware/error-handler.js';
import type { Logger } from '../observability/logger.js';
import { PRODUCER_SILENCE_MS, type TokenEntry } from '../queue/token-stream.js';
import { sendOpenAiError } from './errors.js';
import { type GenerationOutput, type GenerationRequest, usageOf } from './generation.js';
import type { AdmittedItems } from './run-items.js';
import { SseWriter } from './sse.js';

/** After the job's result arrived, how long its stream's last entries may still be on their way. */
const END_GRACE_MS = 300;

export interface StreamCall {
  deps: GatewayDeps;
  inference: Inference;
  admitted: AdmittedItems;
  body: GenerationRequest;
  model: string;
  requestId: string;
  res: ServerResponse;
  /** Fires when the client goes away. */
  closed: AbortSignal;
  log: () => Logger;
}

/**
 * A streamed generation, after admission. The job goes through the queue like any other
 * (coalesced when deterministic, its result cached); its tokens come over the job's token stream
 * (src/queue/token-stream.ts) and go out as SSE chunks as they arrive. A cached answer replays
 * its recorded chunks. Until the first byte is sent, a failure is an ordinary HTTP error; after,
 * an error event. Resolves with the usage sent, if the stream ended well. A client that goes away stops following the stream, which cancels the skill
 * call once no reader is left; a producer that goes silent (its dispatcher died) or a deadline
 * that passes ends the stream with an error event.
 */
export function streamGeneration(call: StreamCall): Promise<ReturnType<typeof usageOf> | undefined> {
  const { deps, inference, admitted, body, res } = call;
  const plan = admitted.plans[0]!;
  const admission = admitted.admissions[0]!;
  // A streamed job never shares an id with the same request unstreamed: only the former writes tokens.
  const jobId = plan.coalesceId ? `${plan.coalesceId}-s` : `s-${call.requestId}`;
  plan.coalesceId = jobId;
  const sse = new SseWriter(res, body, call.requestId, call.model);
  const likelyHit = admission.entry !== undefined && !plan.directives.noCache && admission.entry.expiresAt > Date.now();

  return new Promise((resolve) => {
    let usage: ReturnType<typeof usageOf> | undefined;
    let done = false;
    let sent = 0;
    let heardAt: number | undefined;
    let unfollow = () => {};
    const timers: NodeJS.Timeout[] = [];

    // Computed without the queue (Redis down): deltas come in process, not over Redis.
    const unlisten = deps.directStreams?.listen(
      call.requestId,
      (text) => {
        if (done) return;
        sse.delta(text);
        sent++;
      },
      call.closed,
    );

    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      unfollow();
      unlisten?.();
      timers.forEach(clearTimeout);
      call.closed.removeEventListener('abort', onClose);
      try {
        if (!res.destroyed) fn();
      } finally {
        resolve(usage);
      }
    };
    const fail = (err: unknown) =>
      finish(() => (sse.started ? sse.error(toAppError(err)) : sendOpenAiError(err, res, call.log)));
    const end = (out: Pick<GenerationOutput, 'finish_reason' | 'usage'>) => {
      usage = usageOf(out as GenerationOutput);
      finish(() => sse.finish(out.finish_reason, usage!));
    };
    const onClose = () => finish(() => undefined);
    call.closed.addEventListener('abort', onClose, { once: true });

    const onEntries = (entries: TokenEntry[]) => {
      heardAt = Date.now();
      for (const e of entries) {
        if (done) return;
        if (e.type === 'delta') {
          sse.delta(e.text);
          sent++;
        } else if (e.type === 'end') {
          end({ finish_reason: e.finishReason, usage: e.usage as GenerationOutput['usage'] });
        } else if (e.type === 'error') {
          fail(AppError.from(e.error));
        }
      }
    };

    if (!likelyHit && deps.tokens) {
      // Headers go out with the first token, before the job's outcome is known.
      res.setHeader('X-Cache', plan.cacheKey ? 'MISS' : 'BYPASS');
      unfollow = deps.tokens.follow(jobId, onEntries, (err) => deps.logger.warn({ err }, 'token stream read failed'));
      // Silence after the producer started means it died: nothing more will come.
      const watch = setInterval(() => {
        if (heardAt !== undefined && Date.now() - heardAt > PRODUCER_SILENCE_MS) {
          fail(new AppError('SKILL_ERROR', 'the stream stopped: the dispatcher producing it went away'));
        }
      }, 250);
      timers.push(watch);
    }
    const deadline = setTimeout(
      () => fail(new AppError('DEADLINE_EXCEEDED', 'the deadline passed before the stream ended')),
      Math.max(0, plan.deadlineAt - Date.now()),
    );
    timers.push(deadline);

    inference.answer(plan, admission, call.requestId).then(
      (answer) => {
        if (done) return;
        if (!sse.started) res.setHeader('X-Cache', answer.cache);
        const out = answer.output as GenerationOutput;
        const chunks = out.chunks ?? [out.text];
        // A queued job's stream may still be delivering its last entries; the whole answer is
        // here, so whatever they would add is sent from it after a short grace.
        const rest = () => {
          if (done) return;
          for (const c of chunks.slice(sent)) if (c.length > 0) sse.delta(c);
          end(out);
        };
        // Nothing heard over Redis: the answer was cached, or computed without the queue.
        if (heardAt === undefined) rest();
        else timers.push(setTimeout(rest, END_GRACE_MS));
      },
      (err: unknown) => fail(err),
    );
  });
}
