import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A test double for a remote OpenAI-compatible LLM server (vLLM, llama.cpp, Ollama), which cannot
 * run here. It speaks the same HTTP API on 127.0.0.1 and a free port, answers from a script, and
 * records every request so tests can check what the skill sent.
 */

/** How the fake answers one generation request. */
export type Reply =
  /**
   * A normal answer, echoing the prompt (`echo: <last user message or prompt>`), after `delayMs`.
   * Streamed (`stream: true`) one word a chunk, `tokenDelayMs` apart.
   */
  | { kind: 'ok'; delayMs?: number; text?: string; tokenDelayMs?: number }
  /** Streams `afterTokens` chunks, then sends nothing more and keeps the connection open. */
  | { kind: 'stall'; afterTokens: number }
  /** Any status with a JSON body and headers, e.g. 429 with Retry-After. */
  | { kind: 'status'; status: number; body?: unknown; headers?: Record<string, string> }
  /** 200 with a body that is not JSON. */
  | { kind: 'malformed' };

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: any;
  /** Epoch ms the request arrived. */
  at: number;
  /** The client went away before the answer was sent. */
  aborted: boolean;
}

export interface FakeOpenAi {
  /** OpenAI-compatible root, ending in /v1. */
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** Generation requests only (chat and completions), in arrival order. */
  generations(): RecordedRequest[];
  /** Queues replies for the next generation requests; once used up, answers are normal. */
  script(...replies: Reply[]): void;
  /** Forgets recorded requests and unused scripted replies. */
  reset(): void;
  /** What GET /v1/models answers: the listed models, or a status. */
  models: { ids: string[]; ownedBy: string } | { status: number; body?: unknown };
  /** How long GET /v1/models takes (a slow upstream makes the skill slow to start). */
  modelsDelayMs: number;
  close(): Promise<void>;
}

export async function startFakeOpenAi(ids: string[] = ['tiny-llm']): Promise<FakeOpenAi> {
  const queue: Reply[] = [];
  const requests: RecordedRequest[] = [];
  const fake: Omit<FakeOpenAi, 'url' | 'port' | 'close'> = {
    requests,
    generations: () => requests.filter((r) => r.path.endsWith('/completions')),
    script: (...replies) => queue.push(...replies),
    reset: () => {
      requests.length = 0;
      queue.length = 0;
    },
    models: { ids, ownedBy: 'fake' },
    modelsDelayMs: 0,
  };

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };

  const server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (raw += chunk));
    req.on('end', () => {
      const record: RecordedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: raw ? safeJson(raw) : undefined,
        at: Date.now(),
        aborted: false,
      };
      requests.push(record);
      res.on('close', () => {
        if (!res.writableFinished) record.aborted = true;
      });
      if (req.method === 'GET' && req.url === '/v1/models') {
        const m = fake.models;
        const answer = () => {
          if ('status' in m) return json(res, m.status, m.body ?? { error: { message: 'nope' } });
          return json(res, 200, {
            object: 'list',
            data: m.ids.map((id) => ({ id, object: 'model', created: 0, owned_by: m.ownedBy })),
          });
        };
        const timer = setTimeout(answer, fake.modelsDelayMs);
        res.on('close', () => clearTimeout(timer));
        return;
      }
      const chat = req.url === '/v1/chat/completions';
      if (req.method !== 'POST' || (!chat && req.url !== '/v1/completions')) {
        return json(res, 404, { error: { message: `no route ${req.method} ${req.url}` } });
      }
      const reply = queue.shift() ?? { kind: 'ok' };
      if (reply.kind === 'status') return json(res, reply.status, reply.body ?? {}, reply.headers);
      if (reply.kind === 'malformed') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('{"choices": [ {"text": "unterminated');
      }
      const body = record.body ?? {};
      const prompt: string = chat
        ? (body.messages?.filter((m: any) => m.role === 'user').at(-1)?.content ?? '')
        : body.prompt;
      const text = reply.kind === 'ok' ? (reply.text ?? `echo: ${prompt}`) : `echo: ${prompt}`;
      if (body.stream === true) return streamAnswer(res, chat, body, text, reply);
      const answer = {
        id: `cmpl-${requests.length}`,
        object: chat ? 'chat.completion' : 'text_completion',
        model: body.model,
        choices: [
          chat
            ? { index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }
            : { index: 0, text, finish_reason: 'length' },
        ],
        usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
      };
      if (reply.kind === 'stall') return; // unstreamed, a stall never answers
      const timer = setTimeout(() => json(res, 200, answer), reply.delayMs ?? 0);
      res.on('close', () => clearTimeout(timer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(fake as FakeOpenAi, {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

/** The answer as OpenAI streams it: one chunk per word, a finish chunk, usage if asked, [DONE]. */
function streamAnswer(res: ServerResponse, chat: boolean, body: any, text: string, reply: Reply): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const words = text.match(/\S+\s*/g) ?? [];
  const head = {
    id: 'cmpl-stream',
    object: chat ? 'chat.completion.chunk' : 'text_completion',
    created: 0,
    model: body.model,
  };
  const chunk = (piece: string | null, finish: string | null) => ({
    ...head,
    choices: [
      chat
        ? { index: 0, delta: piece === null ? {} : { content: piece }, finish_reason: finish }
        : { index: 0, text: piece ?? '', finish_reason: finish },
    ],
  });
  const send = (data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`);
  const delay = reply.kind === 'ok' ? (reply.tokenDelayMs ?? 0) : 0;
  const stallAt = reply.kind === 'stall' ? reply.afterTokens : Infinity;
  let i = 0;
  let timer: NodeJS.Timeout | undefined;
  res.on('close', () => clearTimeout(timer));
  const next = () => {
    if (i >= stallAt) return; // stalls: nothing more, the connection stays open
    if (i < words.length) {
      send(chunk(words[i++]!, null));
      timer = setTimeout(next, delay);
      return;
    }
    send(chunk(null, chat ? 'stop' : 'length'));
    if (body.stream_options?.include_usage) {
      send({
        ...head,
        choices: [],
        usage: { prompt_tokens: 3, completion_tokens: words.length, total_tokens: 3 + words.length },
      });
    }
    res.end('data: [DONE]\n\n');
  };
  timer = setTimeout(next, reply.kind === 'ok' ? (reply.delayMs ?? 0) : 0);
}

function safeJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}
