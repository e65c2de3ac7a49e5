import { type Request, type Response, Router } from 'express';
import { canonicalJson } from '../../cache/cache-key.js';
import { defaultDeadlineMs } from '../../config/index.js';
import { AppError } from '../../errors/index.js';
import { cursorScope, decodeCursor, encodeCursor } from '../../memory/cursor.js';
import type { AssertedTriple, StoredTriple, TripleInput } from '../../memory/entity-store.js';
import { triplesFromSkillOutput } from '../../memory/extraction.js';
import {
  parseAssertBody,
  parseExtractBody,
  parseForgetQuery,
  parseForgetTriplesQuery,
  parseRecallQuery,
} from '../../memory/validation.js';
import type { GatewayDeps } from '../deps.js';
import { idempotencyKey } from '../idempotency-key.js';
import { strictJson } from '../strict-json.js';
import { registrySnapshot } from './request.js';

/** A triple as the API shows it (snake_case, ISO times). */
function present(t: StoredTriple) {
  return {
    id: t.id,
    subject: t.subject,
    verb: t.verb,
    object: t.object,
    confidence: t.confidence,
    source: t.source,
    assertions: t.assertions,
    created_at: t.createdAt.toISOString(),
    updated_at: t.updatedAt.toISOString(),
  };
}

function presentAsserted(list: AssertedTriple[]) {
  const inserted = list.filter((t) => t.inserted).length;
  return { inserted, combined: list.length - inserted, triples: list.map(present) };
}

/**
 * Entity memory, scoped to the caller's tenant (from the API key, never from the request):
 * `POST /v1/memory/triples`, `GET /v1/memory/triples`, `DELETE /v1/memory/triples`,
 * `DELETE /v1/memory`, `POST /v1/memory/extract`.
 */
export function memoryRoutes({
  config,
  memory,
  jobs,
  skills,
}: Pick<GatewayDeps, 'config' | 'memory' | 'jobs' | 'skills'>): Router {
  const router = Router();
  const bulkJson = strictJson(config.MEMORY_BODY_LIMIT_BYTES);
  const json = strictJson(config.BODY_LIMIT_BYTES);

  /**
   * Asserts `triples` and answers; with an Idempotency-Key, at most once per key (a retry gets the
   * first answer again, marked `Idempotency-Replayed: true`).
   */
  async function write<B extends object>(
    req: Request,
    res: Response,
    route: string,
    triples: TripleInput[],
    respond: (asserted: AssertedTriple[]) => { status: number; body: B },
  ): Promise<void> {
    const key = idempotencyKey(req.headers);
    if (key === undefined) {
      const { status, body } = respond(await memory.assert(req.principal.tenantId, triples));
      res.status(status).json(body);
      return;
    }
    const request = canonicalJson({ route, triples });
    const answer = await memory.assertOnce(req.principal.tenantId, triples, { key, request, respond });
    if (answer.replayed) res.setHeader('Idempotency-Replayed', 'true');
    res.status(answer.status).json(answer.body);
  }

  router.post('/v1/memory/triples', bulkJson, async function assertTriples(req, res) {
    const triples = parseAssertBody(req.body, { maxBatch: config.MEMORY_MAX_BATCH, defaultSource: 'api' });
    await write(req, res, 'triples', triples, (stored) => {
      const body = presentAsserted(stored);
      return { status: body.inserted > 0 ? 201 : 200, body };
    });
  });

  router.get('/v1/memory/triples', async function recallTriples(req, res) {
    const params = parseRecallQuery(req.query, { maxPage: config.MEMORY_MAX_PAGE });
    const scope = cursorScope(req.principal.tenantId, { ...params.filter, minConfidence: params.minConfidence });
    const page = await memory.recall(req.principal.tenantId, {
      ...params.filter,
      minConfidence: params.minConfidence,
      limit: params.limit,
      after: params.cursor === undefined ? undefined : decodeCursor(params.cursor, scope),
    });
    res.json({
      triples: page.triples.map(present),
      limit: params.limit,
      next_cursor: page.next ? encodeCursor(page.next, scope) : null,
    });
  });

  router.delete('/v1/memory/triples', async function forgetTriples(req, res) {
    const filter = parseForgetTriplesQuery(req.query);
    res.json({ deleted: await memory.forget(req.principal.tenantId, filter) });
  });

  router.delete('/v1/memory', async function forget(req, res) {
    const filter = parseForgetQuery(req.query);
    res.json({ deleted: await memory.forget(req.principal.tenantId, filter) });
  });

  router.post('/v1/memory/extract', json, async function extract(req, res) {
    const body = parseExtractBody(req.body, config.MAX_INPUT_CHARS);
    const skill = config.MEMORY_EXTRACT_SKILL;
    const task = config.MEMORY_EXTRACT_TASK;
    const snapshot = await registrySnapshot(skills);
    const info = snapshot.catalogue.get(skill);
    if (!info || !info.tasks.includes(task)) {
      throw new AppError('SKILL_UNAVAILABLE', `extraction needs the "${task}" task of the ${skill} skill`, {
        skill,
        task,
        tasks: info?.tasks ?? [],
      });
    }
    if (!snapshot.live.some((r) => r.name === skill)) {
      throw new AppError('SKILL_UNAVAILABLE', `${skill}: no replica is up`, { skill }, { retryAfterS: 1 });
    }
    const result = await jobs.enqueue({
      skill,
      requestId: req.id,
      tenant: { id: req.principal.tenantId, tier: req.principal.tier },
      deadlineAt: req.receivedAt + defaultDeadlineMs(config, skill),
      item: { text: body.text, task, maxTokens: 0, modelVersion: '' },
    });
    const out = result.output;
    const extraction = triplesFromSkillOutput('json' in out ? out.json : 'text' in out ? out.text : undefined);
    if (!extraction) {
      throw new AppError('SKILL_ERROR', `${skill}/${task} answered without a list of triples`, { skill, task });
    }
    const source = body.source ?? `extract:${skill}`;
    await write(
      req,
      res,
      'extract',
      extraction.triples.map((t) => ({ ...t, source })),
      (stored) => ({
        status: 200,
        body: { model: result.model, ...presentAsserted(stored), skipped: extraction.skipped },
      }),
    );
  });

  return router;
}
