import type { ErrorBody } from '../../../errors/index.js';

/** One chat message, as OpenAI-compatible servers take them. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

const ROLES = new Set(['system', 'user', 'assistant']);
/** A conversation longer than this is more likely a mistake than a prompt. */
const MAX_MESSAGES = 256;

/**
 * The `chat` task's input: plain text is one user message. A text that is a JSON array of
 * objects that each have a `role` is taken as the whole conversation instead
 * (`[{"role":"system","content":"..."},{"role":"user","content":"..."}]`), and must then be a
 * valid one: anything else in it is BAD_REQUEST naming the message, never silently sent as text.
 * Any other text, even one that starts with "[", stays plain text.
 */
export function chatMessages(text: string): { ok: true; messages: ChatMessage[] } | { ok: false; error: ErrorBody } {
  const conversation = asConversation(text);
  if (!conversation) return { ok: true, messages: [{ role: 'user', content: text }] };
  if (conversation.length === 0) return bad('the messages array is empty');
  if (conversation.length > MAX_MESSAGES) return bad(`at most ${MAX_MESSAGES} messages are accepted`);
  const messages: ChatMessage[] = [];
  for (const [i, m] of conversation.entries()) {
    const keys = Object.keys(m).filter((k) => k !== 'role' && k !== 'content');
    if (typeof m.role !== 'string' || !ROLES.has(m.role)) {
      return bad(`messages[${i}].role must be "system", "user" or "assistant"`);
    }
    if (typeof m.content !== 'string') return bad(`messages[${i}].content must be a string`);
    if (keys.length > 0) return bad(`messages[${i}] has unknown fields: ${keys.slice(0, 5).join(', ')}`);
    messages.push({ role: m.role as ChatMessage['role'], content: m.content });
  }
  if (!messages.some((m) => m.role === 'user')) return bad('the messages need at least one "user" message');
  return { ok: true, messages };
}

function asConversation(text: string): Record<string, unknown>[] | undefined {
  if (!text.trimStart().startsWith('[')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  const isMessage = (x: unknown) => typeof x === 'object' && x !== null && !Array.isArray(x) && 'role' in x;
  return parsed.length === 0 || parsed.every(isMessage) ? (parsed as Record<string, unknown>[]) : undefined;
}

function bad(message: string): { ok: false; error: ErrorBody } {
  return { ok: false, error: { code: 'BAD_REQUEST', message: `chat input: ${message}`, details: { field: 'input' } } };
}
