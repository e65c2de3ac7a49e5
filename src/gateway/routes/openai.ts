import { type NextFunction, type Request, type Response, Router } from 'express';
import { AppError } from '../../errors/index.js';
import { base64Vector, embeddingItem, embeddingOf, parseEmbeddingsRequest } from '../../openai/embeddings.js';
import { sendOpenAiError } from '../../openai/errors.js';
import { findModel, modelObject, servedModels } from '../../openai/models.js';
import { admitItems, answerItems } from '../../openai/run-items.js';
import { createTokenLimiter, estimateTokens } from '../../openai/token-limit.js';
import type { GatewayDeps } from '../deps.js';
import type { Inference } from '../inference.js';
import { strictJson } from '../strict-json.js';
import { openAiGenerateRoutes } from './openai-generate.js';
import { registrySnapshot } from './request.js';

/**
 * The OpenAI-compatible API: `GET /v1/models`, `GET /v1/models/:id`, `POST /v1/embeddings` here,
 * the generation routes in openai-generate.ts. Per key, a tokens-per-minute limit (token-limit.ts) next to the request limit. The same keys, limits, cache, queue and batching
 * as /v1/skills; errors in OpenAI's body (`{"error":{"message","type","param","code"}}`) with the
 * statuses of our own codes, so OpenAI's SDKs raise their own error classes.
 */
export function openAiRoutes(deps: GatewayDeps, inference: Inference): Router {
  const { config, skills } = deps;
  const router = Router();
  const tokens = createTokenLimiter(deps);
  const json = strictJson(config.BODY_LIMIT_BYTES);
  const paths = ['/v1/models', '/v1/models/*id', '/v1/embeddings', '/v1/chat/completions', '/v1/completions'];

  // Authenticated here rather than by the /v1 middleware, so a bad key gets OpenAI's body too.
  router.use(paths, async function openAiAuthenticate(req: Request, _res: Response, next: NextFunction) {
    req.principal = await deps.authenticator.authenticate(req.headers.authorization);
    next();
  });

  router.get('/v1/models', async function listModels(_req, res) {
    const models = servedModels(await registrySnapshot(skills));
    res.json({ object: 'list', data: models.map(modelObject) });
  });

  router.get('/v1/models/*id', async function getModel(req, res) {
    // Ids may hold a slash (`onnx/embedder`), as OpenAI's fine-tuned model ids hold colons.
    const id = (req.params as { id: string[] }).id.join('/');
    const found = servedModels(await registrySnapshot(skills)).find((m) => m.id === id);
    if (!found)
      throw new AppError('MODEL_NOT_FOUND', `The model \`${id.slice(0, 100)}\` does not exist`, { field: 'model' });
    res.json(modelObject(found));
  });

  router.post('/v1/embeddings', json, async function embeddings(req, res) {
    const body = parseEmbeddingsRequest(req.body, config.MAX_INPUT_CHARS);
    const snapshot = await registrySnapshot(skills);
    const model = findModel(snapshot, body.model, 'embedding');
    const info = snapshot.catalogue.get(model.skill)!;
    const items = body.inputs.map((input, i) => embeddingItem(model, input, i));
    const call = { principal: req.principal, headers: req.headers, requestId: req.id, receivedAt: req.receivedAt };
    const admitted = await admitItems(deps, inference, snapshot, info, items, call, res);
    const estimate = body.inputs.reduce<number>(
      (n, x) => n + (typeof x === 'string' ? estimateTokens(x) : x.length),
      0,
    );
    await tokens.reserve(req.principal, estimate, res);
    const answers = await answerItems(inference, admitted, req.id);
    let tokens_ = 0;
    const data = answers.map((answer, index) => {
      const { vector, tokens: n } = embeddingOf(answer, body.inputs[index]!);
      tokens_ += n;
      return { object: 'embedding', index, embedding: body.encoding === 'base64' ? base64Vector(vector) : vector };
    });
    tokens.settle(req.principal, model.id, estimate, { prompt: tokens_, completion: 0 });
    const hits = answers.filter((a) => a.cache === 'HIT').length;
    res.setHeader('X-Cache', hits === answers.length ? 'HIT' : hits === 0 ? answers[0]!.cache : 'PARTIAL');
    res.json({ object: 'list', data, model: model.id, usage: { prompt_tokens: tokens_, total_tokens: tokens_ } });
  });

  router.use(openAiGenerateRoutes(deps, inference, tokens));

  router.use(paths, function openAiError(err: unknown, req: Request, res: Response, _next: NextFunction) {
    sendOpenAiError(err, res, () => req.log);
  });
  return router;
}
