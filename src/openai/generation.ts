import { AppError } from '../errors/index.js';
import type { InferJobData } from '../queue/job.js';
import type { ServedModel } from './models.js';

/** A chat or completion request, checked: what the skill's item carries and what the route answers with. */
export interface GenerationRequest {
  kind: 'chat' | 'completion';
  model: string;
  /** The chat messages as JSON (the openai skill's conversation input), or the prompt. */
  text: string;
  maxTokens: number;
  temperature?: number;
  stream: boolean;
  includeUsage: boolean;
}

/** What the openai skill answers for one generation (src/skills/backends/openai). */
export interface GenerationOutput {
  text: string;
  finish_reason: string | null;
  usage: { prompt_tokens: number | null; completion_tokens: number | null; total_tokens: number | null };
  /** The text as the upstream streamed it: a cached streamed answer replays as the same chunks. */
  chunks?: string[];
}

const COMMON = ['model', 'max_tokens', 'temperature', 'stream', 'stream_options', 'n', 'user'];
const CHAT_FIELDS = new Set([...COMMON, 'messages', 'max_completion_tokens']);
const COMPLETION_FIELDS = new Set([...COMMON, 'prompt']);
const ROLES: Record<string, string> = { system: 'system', developer: 'system', user: 'user', assistant: 'assistant' };

const bad = (field: string, message: string) => new AppError('BAD_REQUEST', `${field}: ${message}`, { field });

/**
 * A `POST /v1/chat/completions` or `/v1/completions` body. Strict: a field the cluster cannot pass
 * to the upstream (tools, logprobs, stop, top_p, …) is a 400 naming it, never silently dropped.
 */
export function parseGenerationRequest(
  kind: 'chat' | 'completion',
  body: unknown,
  maxChars: number,
): GenerationRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new AppError('BAD_REQUEST', 'the body must be a JSON object');
  }
  const b = body as Record<string, unknown>;
  const allowed = kind === 'chat' ? CHAT_FIELDS : COMPLETION_FIELDS;
  const unknown = Object.keys(b).filter((k) => !allowed.has(k) && b[k] !== null);
  if (unknown.length > 0) throw bad(unknown[0]!, 'not supported by this server');
  if (b.n !== undefined && b.n !== null && b.n !== 1) throw bad('n', 'only 1 is supported');
  if (b.user !== undefined && b.user !== null && typeof b.user !== 'string') throw bad('user', 'must be a string');
  const maxTokens = b.max_completion_tokens ?? b.max_tokens ?? 0;
  if (!Number.isInteger(maxTokens) || (maxTokens as number) < 0 || (maxTokens as number) > 1_000_000) {
    throw bad(b.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens', 'a non-negative integer');
  }
  const temperature = b.temperature ?? undefined;
  if (temperature !== undefined && (typeof temperature !== 'number' || temperature < 0 || temperature > 2)) {
    throw bad('temperature', 'a number from 0 to 2');
  }
  const stream = b.stream ?? false;
  if (typeof stream !== 'boolean') throw bad('stream', 'true or false');
  const options = b.stream_options ?? undefined;
  if (options !== undefined) {
    if (!stream) throw bad('stream_options', 'only with stream: true');
    const o = options as Record<string, unknown>;
    if (typeof o !== 'object' || Object.keys(o).some((k) => k !== 'include_usage')) {
      throw bad('stream_options', 'only include_usage is supported');
    }
    if (o.include_usage !== undefined && typeof o.include_usage !== 'boolean') {
      throw bad('stream_options', 'include_usage is true or false');
    }
  }
  const text = kind === 'chat' ? chatText(b.messages) : promptText(b.prompt);
  if (text.length > maxChars) {
    throw new AppError(
      'INPUT_TOO_LARGE',
      `the ${kind === 'chat' ? 'messages are' : 'prompt is'} longer than ${maxChars} characters`,
      {
        field: kind === 'chat' ? 'messages' : 'prompt',
      },
    );
  }
  return {
    kind,
    model: b.model as string,
    text,
    maxTokens: maxTokens as number,
    temperature: temperature as number | undefined,
    stream,
    includeUsage: (options as { include_usage?: boolean } | undefined)?.include_usage === true,
  };
}

/** The messages as the skill's conversation JSON; content parts of type text are joined. */
function chatText(raw: unknown): string {
  if (!Array.isArray(raw) || raw.length === 0) throw bad('messages', 'a non-empty array of messages');
  const messages = raw.map((m: unknown, i) => {
    const msg = m as Record<string, unknown> | null;
    const role = typeof msg?.role === 'string' ? ROLES[msg.role] : undefined;
    if (!msg || !role) throw bad('messages', `messages[${i}].role must be system, developer, user or assistant`);
    const extra = Object.keys(msg).filter((k) => k !== 'role' && k !== 'content' && k !== 'name');
    if (extra.length > 0) throw bad('messages', `messages[${i}].${extra[0]} is not supported`);
    return { role, content: contentText(msg.content, i) };
  });
  if (!messages.some((m) => m.role === 'user')) throw bad('messages', 'at least one user message');
  return JSON.stringify(messages);
}

function contentText(content: unknown, i: number): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part: unknown, j) => {
        const p = part as { type?: unknown; text?: unknown } | null;
        if (p?.type !== 'text' || typeof p.text !== 'string') {
          throw bad('messages', `messages[${i}].content[${j}]: only text parts are supported`);
        }
        return p.text;
      })
      .join('');
  }
  throw bad('messages', `messages[${i}].content must be a string or text parts`);
}

function promptText(raw: unknown): string {
  const prompt = Array.isArray(raw) && raw.length === 1 ? raw[0] : raw;
  if (typeof prompt !== 'string' || prompt.length === 0) throw bad('prompt', 'a non-empty string (one prompt)');
  return prompt;
}

/** The job item: the openai skill's chat or completion task. `stream` asks the dispatcher for tokens as they come. */
export function generationItem(model: ServedModel, req: GenerationRequest): InferJobData['item'] {
  return {
    text: req.text,
    task: req.kind,
    maxTokens: req.maxTokens,
    ...(req.temperature === undefined ? {} : { temperature: req.temperature }),
    modelVersion: '',
    ...(req.stream ? { stream: true } : {}),
  };
}

/** OpenAI's usage object (zeros where the upstream did not count). */
export function usageOf(out: GenerationOutput) {
  const prompt = out.usage?.prompt_tokens ?? 0;
  const completion = out.usage?.completion_tokens ?? 0;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: out.usage?.total_tokens ?? prompt + completion,
  };
}

/** The non-streamed answer: a chat.completion or a text_completion. */
export function completionObject(
  req: GenerationRequest,
  id: string,
  created: number,
  model: string,
  out: GenerationOutput,
) {
  const finish = out.finish_reason ?? 'stop';
  return req.kind === 'chat'
    ? {
        id: `chatcmpl-${id}`,
        object: 'chat.completion',
        created,
        model,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: out.text, refusal: null },
            logprobs: null,
            finish_reason: finish,
          },
        ],
        usage: usageOf(out),
      }
    : {
        id: `cmpl-${id}`,
        object: 'text_completion',
        created,
        model,
        choices: [{ index: 0, text: out.text, logprobs: null, finish_reason: finish }],
        usage: usageOf(out),
      };
}
