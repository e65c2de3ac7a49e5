import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import getRawBody from 'raw-body';
import type { Logger } from '../observability/logger.js';
import type { GatewayDeps } from './deps.js';
import { invalidJson, sendError, sendJson } from './middleware/error-handler.js';
import { type RequestContextOptions, type TrackedRequest, trackRequest } from './middleware/request-context.js';
import type { InferService } from './routes/infer.js';
import { decodeUtf8 } from './strict-json.js';

/** The canonical infer path; anything else (odd casing, encoded names, trailing slash) goes to Express. */
const INFER_PATH = /^\/v1\/skills\/([A-Za-z0-9][A-Za-z0-9._-]{0,63})\/infer(?:\?.*)?$/;
const ROUTE = '/v1/skills/:skill/infer';

/**
 * `Content-Type: application/json` (charset absent or UTF-8) and no content coding: the requests
 * the fast path reads itself. Other JSON types, charsets and gzip bodies go to Express, whose
 * body parser handles (or refuses) them.
 */
function plainJson(headers: IncomingHttpHeaders): boolean {
  const encoding = headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return false;
  const type = headers['content-type'];
  if (type === undefined) return false;
  const [media, ...params] = type.split(';');
  if (media?.trim().toLowerCase() !== 'application/json') return false;
  return params.every((p) => /^\s*charset\s*=\s*"?utf-8"?\s*$/i.test(p));
}

/**
 * `POST /v1/skills/:skill/infer` on node:http, before Express sees the request. The profile of
 * the cache-hit path put Express's own per-request work (prototype switching, the router walk,
 * res.json) above everything the gateway does for a hit; this path does the same steps with the
 * same code (trackRequest, the authenticator, the infer service, sendError) and Express's body
 * limits and error codes. It takes only requests it can serve exactly as the Express route
 * would, and returns false for the rest, which Express then serves.
 */
export function fastInfer(
  { authenticator, config, logger }: Pick<GatewayDeps, 'authenticator' | 'config' | 'logger'>,
  serve: InferService,
  context: RequestContextOptions,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const route = () => ROUTE;

  async function handle(req: IncomingMessage, res: ServerResponse, skill: string, tracked: TrackedRequest) {
    // As in Express: the key is checked before the body is read.
    const principal = await authenticator.authenticate(req.headers.authorization);
    const raw = decodeUtf8(
      await getRawBody(req, { length: req.headers['content-length'], limit: config.BODY_LIMIT_BYTES }),
    );
    let body: unknown = {};
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        throw invalidJson();
      }
    }
    const answer = await serve(
      {
        skill,
        body,
        headers: req.headers,
        principal,
        requestId: tracked.id,
        receivedAt: tracked.receivedAt,
        startedAt: tracked.startedAt,
      },
      res,
    );
    sendJson(res, 200, answer);
  }

  return function fastInferPath(req, res) {
    if (req.method !== 'POST') return false;
    const match = INFER_PATH.exec(req.url ?? '');
    if (!match || !plainJson(req.headers)) return false;
    let log: Logger | undefined;
    // Made only if something logs: most requests never do.
    const requestLog = () => (log ??= logger.child({ requestId: tracked.id }));
    const tracked = trackRequest(req, res, context, route, requestLog);
    const { id } = tracked;
    handle(req, res, match[1]!, tracked).catch((err: unknown) => sendError(err, id, res, requestLog));
    return true;
  };
}
