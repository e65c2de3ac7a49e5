import { upstreamMessage } from './upstream-errors.js';
import { upstreamHeaders } from './upstream.js';

/** Longest wait for the upstream's model list at start-up. */
const STARTUP_TIMEOUT_MS = 10_000;

/**
 * Asks the upstream which models it serves (GET /models) and returns the one to use. Throws an
 * Error naming the URL and what to change when the upstream is unreachable, refuses the key, is
 * not OpenAI-compatible or does not serve the model.
 */
export async function checkUpstream(
  baseUrl: string,
  apiKey: string | undefined,
  wanted: string | undefined,
  timeoutMs: number,
): Promise<{ model: string; ownedBy?: string }> {
  const url = `${baseUrl}/models`;
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, {
      headers: upstreamHeaders(apiKey),
      signal: AbortSignal.timeout(Math.min(timeoutMs, STARTUP_TIMEOUT_MS)),
    });
    text = await res.text();
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' ? 'no answer in time' : (e.cause?.code ?? e.cause?.message ?? e.message);
    throw new Error(
      `openai: cannot reach the upstream at ${url} (${why}); is OPENAI_BASE_URL right and the server up?`,
      {
        cause: err,
      },
    );
  }
  if (res.status === 401 || res.status === 403) {
    throw new Error(`openai: the upstream at ${url} refused the API key (${res.status}); check OPENAI_API_KEY`);
  }
  if (!res.ok) {
    const detail = upstreamMessage(text);
    throw new Error(
      `openai: GET ${url} answered ${res.status}${detail ? ` (${detail})` : ''}; OPENAI_BASE_URL should be the ` +
        `server's OpenAI-compatible root, e.g. http://127.0.0.1:8000/v1`,
    );
  }
  let models: { id: string; owned_by?: unknown }[];
  try {
    const data = (JSON.parse(text) as { data?: unknown }).data;
    if (!Array.isArray(data)) throw new Error('no "data" list');
    models = data.filter((m): m is { id: string } => typeof (m as { id?: unknown })?.id === 'string');
  } catch (err) {
    throw new Error(`openai: GET ${url} did not answer an OpenAI model list (${(err as Error).message})`, {
      cause: err,
    });
  }
  const ids = models.map((m) => m.id);
  const listed = ids.length > 0 ? ids.slice(0, 20).join(', ') : 'none';
  const pick = wanted ? models.find((m) => m.id === wanted) : models.length === 1 ? models[0] : undefined;
  if (!pick) {
    throw new Error(
      wanted
        ? `openai: the upstream at ${baseUrl} does not serve model "${wanted}" (it serves: ${listed}); set OPENAI_MODEL to one of them`
        : `openai: set OPENAI_MODEL; the upstream at ${baseUrl} serves ${ids.length === 0 ? 'no model' : `several: ${listed}`}`,
    );
  }
  return { model: pick.id, ...(typeof pick.owned_by === 'string' && pick.owned_by ? { ownedBy: pick.owned_by } : {}) };
}
