import type { ServerResponse } from 'node:http';
import type { AppError } from '../errors/index.js';
import { openAiErrorBody } from './errors.js';
import type { GenerationRequest } from './generation.js';

/**
 * One streamed generation in OpenAI's Server-Sent Events: `chat.completion.chunk`s (a first one
 * with the assistant role, one per delta, a last one with the finish reason) or
 * `text_completion` chunks, the usage chunk when `stream_options.include_usage` asked for it,
 * then `data: [DONE]`. A failure after the stream started is an `error` event (what OpenAI's
 * SDKs raise as an APIError) and the end of the stream, without [DONE].
 */
export class SseWriter {
  started = false;
  private readonly id: string;
  private readonly created = Math.floor(Date.now() / 1000);

  constructor(
    private readonly res: ServerResponse,
    private readonly req: GenerationRequest,
    requestId: string,
    private readonly model: string,
  ) {
    this.id = req.kind === 'chat' ? `chatcmpl-${requestId}` : `cmpl-${requestId}`;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      // nginx passes each event on as it comes instead of buffering the response.
      'X-Accel-Buffering': 'no',
    });
    this.res.flushHeaders();
    if (this.req.kind === 'chat') this.chunk({ role: 'assistant', content: '' }, null);
  }

  delta(text: string): void {
    this.start();
    this.chunk(this.req.kind === 'chat' ? { content: text } : text, null);
  }

  finish(finishReason: string | null, usage: Record<string, number>): void {
    this.start();
    this.chunk(this.req.kind === 'chat' ? {} : '', finishReason ?? 'stop');
    if (this.req.includeUsage) {
      this.event({ ...this.head(), choices: [], usage });
    }
    this.res.end('data: [DONE]\n\n');
  }

  error(err: AppError): void {
    this.start();
    this.event(openAiErrorBody(err));
    this.res.end();
  }

  private head() {
    return {
      id: this.id,
      object: this.req.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
      created: this.created,
      model: this.model,
    };
  }

  private chunk(delta: Record<string, unknown> | string, finishReason: string | null): void {
    const choice =
      typeof delta === 'string'
        ? { index: 0, text: delta, logprobs: null, finish_reason: finishReason }
        : { index: 0, delta, logprobs: null, finish_reason: finishReason };
    this.event({ ...this.head(), choices: [choice] });
  }

  private event(data: unknown): void {
    this.res.write(`data: ${JSON.stringify(data)}\n\n`);
  }
}
