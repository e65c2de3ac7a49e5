import type { ErrorBody } from '../../../errors/index.js';
import type { BackendResult, InferContext } from '../../backend.js';
import { statusError, transportError } from './upstream-errors.js';
import { upstreamHeaders } from './upstream.js';

/** Time kept back from the caller's deadline so our answer, even an error, reaches it in time. */
const REPLY_MARGIN_MS = 100;

export interface StreamCall {
  baseUrl: string;
  apiKey?: string;
  timeoutMs: number;
  task: 'chat' | 'completion';
  model: string;
  /** The request body, without `stream`. */
  payload: Record<string, unknown>;
}

/**
 * One generation with `stream: true` upstream: each content delta of the server's Server-Sent
 * Events goes to `onDelta` as it arrives; resolves with the whole text, the finish reason, the
 * usage (asked for with stream_options.include_usage, which vLLM, llama.cpp and OpenAI send in a
 * last chunk) and the deltas as they came, so a cached answer replays as the same stream. The
 * call is bounded by the caller's deadline (and OPENAI_TIMEOUT_MS), including an upstream that
 * stalls mid-stream, and aborted when the caller goes away. No retries: a stream cannot be
 * restarted once deltas have gone out.
 */
export async function streamGeneration(
  call: StreamCall,
  context: InferContext,
  onDelta: (text: string) => void,
): Promise<BackendResult> {
  const budget = Math.min(
    call.timeoutMs,
    context.deadline === undefined ? Infinity : context.deadline - REPLY_MARGIN_MS - Date.now(),
  );
  if (budget <= 0) return fail(transportError(undefined, true));
  const timeout = AbortSignal.timeout(budget);
  const signal = context.signal ? AbortSignal.any([timeout, context.signal]) : timeout;
  const path = call.task === 'chat' ? '/chat/completions' : '/completions';
  const body = { ...call.payload, stream: true, stream_options: { include_usage: true } };
  const chunks: string[] = [];
  let finish: string | null = null;
  let usage: Record<string, unknown> | undefined;
  try {
    const res = await fetch(`${call.baseUrl}${path}`, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json', ...upstreamHeaders(call.apiKey), accept: 'text/event-stream' },
      signal,
    });
    if (res.status < 200 || res.status >= 300) {
      return fail(statusError(res.status, await res.text(), call.model));
    }
    if (!res.body) return fail({ code: 'SKILL_ERROR', message: 'the upstream answered without a body' });
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const bytes of res.body as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(bytes, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, end).replace(/\r$/, '');
        buffer = buffer.slice(end + 1);
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') return done();
        let event: StreamEvent;
        try {
          event = JSON.parse(data) as StreamEvent;
        } catch {
          return fail({ code: 'SKILL_ERROR', message: 'the upstream streamed malformed JSON' });
        }
        if (event.error) return fail({ code: 'SKILL_ERROR', message: 'the upstream failed mid-stream' });
        if (event.usage) usage = event.usage;
        const choice = event.choices?.[0];
        const text = call.task === 'chat' ? choice?.delta?.content : choice?.text;
        if (typeof text === 'string' && text.length > 0) {
          chunks.push(text);
          onDelta(text);
        }
        if (typeof choice?.finish_reason === 'string') finish = choice.finish_reason;
      }
    }
    // Some servers close without [DONE]; what came is the answer.
    return done();
  } catch (err) {
    return fail(transportError(err, timeout.aborted || context.signal?.aborted === true));
  }

  function done(): BackendResult {
    const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
    return {
      ok: true,
      output: {
        json: {
          task: call.task,
          text: chunks.join(''),
          finish_reason: finish,
          usage: {
            prompt_tokens: num(usage?.prompt_tokens),
            completion_tokens: num(usage?.completion_tokens),
            total_tokens: num(usage?.total_tokens),
          },
          chunks,
        },
      },
    };
  }
}

interface StreamEvent {
  choices?: { delta?: { content?: unknown }; text?: unknown; finish_reason?: unknown }[];
  usage?: Record<string, unknown>;
  error?: unknown;
}

function fail(error: ErrorBody): BackendResult {
  return { ok: false, error };
}
