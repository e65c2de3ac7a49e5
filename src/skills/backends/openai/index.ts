import type { Config } from '../../../config/index.js';
import type { ErrorBody } from '../../../errors/index.js';
import type {
  BackendItem,
  BackendResult,
  InferContext,
  ModelState,
  SkillBackend,
  SkillDescriptor,
} from '../../backend.js';
import { chatMessages } from './input.js';
import { createLimiter } from './limiter.js';
import { checkUpstream } from './startup.js';
import { streamGeneration } from './stream.js';
import { createUpstream, normaliseBaseUrl, type UpstreamStats } from './upstream.js';

const TASKS = ['chat', 'completion'] as const;
type Task = (typeof TASKS)[number];

export interface OpenAiBackend extends SkillBackend {
  /** What the upstream was asked and answered since start. */
  upstreamStats(): UpstreamStats;
}

/**
 * Forwards to an OpenAI-compatible server (vLLM, llama.cpp server, Ollama, OpenAI itself):
 * `chat` posts /chat/completions, `completion` posts /completions; max_tokens and temperature
 * pass through. Sampling makes the answers differ between calls, so the skill declares itself
 * non-deterministic: only requests at temperature 0 are cached (see the gateway's cache rule).
 * `load()` checks the upstream and the model and throws a message naming the URL when either is
 * wrong, so a misconfigured skill stops at start-up rather than fail every call.
 */
export function createOpenAiBackend(config: Config): OpenAiBackend {
  if (!config.OPENAI_BASE_URL) {
    throw new Error(
      'openai: set OPENAI_BASE_URL to an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (vLLM), ' +
        'http://127.0.0.1:8080/v1 (llama.cpp server) or http://127.0.0.1:11434/v1 (Ollama)',
    );
  }
  const baseUrl = normaliseBaseUrl(config.OPENAI_BASE_URL);
  const upstream = createUpstream({
    baseUrl,
    apiKey: config.OPENAI_API_KEY,
    timeoutMs: config.OPENAI_TIMEOUT_MS,
    maxRetries: config.OPENAI_MAX_RETRIES,
  });
  const limiter = createLimiter(config.SKILL_MAX_CONCURRENCY);
  let state: ModelState = 'UNLOADED';
  let model = config.OPENAI_MODEL ?? '';
  let ownedBy = 'openai-compatible';

  /** The upstream request for an item, or the item's error. */
  function request(item: BackendItem): { task: Task; payload: Record<string, unknown> } | BackendResult {
    if (!isTask(item.task)) {
      return fail({
        code: 'UNKNOWN_TASK',
        message: `openai has no task "${item.task}"; tasks: ${TASKS.join(', ')}`,
        details: { task: item.task, tasks: [...TASKS] },
      });
    }
    if (typeof item.text !== 'string' || item.text.length === 0) {
      return fail({ code: 'BAD_REQUEST', message: 'openai needs a non-empty text input', details: { field: 'input' } });
    }
    if (item.modelVersion && item.modelVersion !== model) {
      return fail({
        code: 'BAD_REQUEST',
        message: `this skill serves model "${model}" only`,
        details: { field: 'model_version' },
      });
    }
    const sampling = {
      ...(item.maxTokens > 0 ? { max_tokens: item.maxTokens } : {}),
      ...(item.temperature === undefined ? {} : { temperature: item.temperature }),
    };
    if (item.task === 'chat') {
      const input = chatMessages(item.text);
      if (!input.ok) return input;
      return { task: item.task, payload: { model, messages: input.messages, ...sampling } };
    }
    return { task: item.task, payload: { model, prompt: item.text, ...sampling } };
  }

  async function one(item: BackendItem, context: InferContext): Promise<BackendResult> {
    const req = request(item);
    if ('ok' in req) return req;
    const path = req.task === 'chat' ? '/chat/completions' : '/completions';
    const res = await limiter
      .run(() => upstream.request(path, { ...req.payload, stream: false }, model, context), context.signal)
      .catch(() => ({ ok: false as const, error: { code: 'SKILL_TIMEOUT', message: 'the caller gave up' } }));
    if (!res.ok) return { ok: false, error: res.error as ErrorBody };
    return answer(req.task, res.body);
  }

  return {
    describe(): SkillDescriptor {
      return {
        backend: 'openai',
        model: `${model || 'unknown'}@${ownedBy}`,
        tasks: TASKS,
        defaultTask: 'chat',
        deterministic: false,
      };
    },
    state: () => state,
    /** Nothing heavy to keep: checking the upstream at start-up is loading it. */
    prepare() {
      return this.load();
    },
    async load() {
      if (state === 'READY') return;
      state = 'LOADING';
      try {
        const found = await checkUpstream(
          baseUrl,
          config.OPENAI_API_KEY,
          config.OPENAI_MODEL,
          config.OPENAI_TIMEOUT_MS,
        );
        model = found.model;
        ownedBy = found.ownedBy ?? ownedBy;
        state = 'READY';
      } catch (err) {
        state = 'FAILED';
        throw err;
      }
    },
    async unload() {
      state = 'UNLOADED';
    },
    async inferBatch(items: readonly BackendItem[], context: InferContext = {}): Promise<BackendResult[]> {
      if (state !== 'READY') throw new Error('openai: the upstream has not been checked (load() first)');
      // One upstream request per item, concurrently: OpenAI-compatible servers batch on their side.
      return Promise.all(items.map((item) => one(item, context)));
    },
    async inferStream(item, context, onDelta): Promise<BackendResult> {
      if (state !== 'READY') throw new Error('openai: the upstream has not been checked (load() first)');
      const req = request(item);
      if ('ok' in req) return req;
      const call = { baseUrl, apiKey: config.OPENAI_API_KEY, timeoutMs: config.OPENAI_TIMEOUT_MS, model, ...req };
      return limiter
        .run(() => streamGeneration(call, context, onDelta), context.signal)
        .catch(() => fail({ code: 'SKILL_TIMEOUT', message: 'the caller gave up' }));
    },
    upstreamStats: () => structuredClone(upstream.stats),
  };
}

/** The generated text, why generation stopped and the token counts, from an upstream answer. */
function answer(task: Task, body: unknown): BackendResult {
  const b = body as {
    choices?: { message?: { content?: unknown }; text?: unknown; finish_reason?: unknown }[];
    usage?: { prompt_tokens?: unknown; completion_tokens?: unknown; total_tokens?: unknown };
    model?: unknown;
  } | null;
  const choice = Array.isArray(b?.choices) ? b.choices[0] : undefined;
  const raw = task === 'chat' ? choice?.message?.content : choice?.text;
  // A chat answer that is only a tool call has null content: report it as empty text.
  const text = raw === null && task === 'chat' ? '' : raw;
  if (typeof text !== 'string') {
    return fail({ code: 'SKILL_ERROR', message: 'the upstream answered without a generated text' });
  }
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  return {
    ok: true,
    output: {
      json: {
        task,
        text,
        finish_reason: typeof choice?.finish_reason === 'string' ? choice.finish_reason : null,
        usage: {
          prompt_tokens: num(b?.usage?.prompt_tokens) ?? null,
          completion_tokens: num(b?.usage?.completion_tokens) ?? null,
          total_tokens: num(b?.usage?.total_tokens) ?? null,
        },
      },
    },
  };
}

function fail(error: ErrorBody): BackendResult {
  return { ok: false, error };
}

function isTask(task: string): task is Task {
  return (TASKS as readonly string[]).includes(task);
}
