import { type Request, type Response, Router } from 'express';
import {
  completionObject,
  type GenerationOutput,
  generationItem,
  parseGenerationRequest,
  usageOf,
} from '../../openai/generation.js';
import { estimateTokens, type TokenLimiter } from '../../openai/token-limit.js';
import { findModel } from '../../openai/models.js';
import { admitItems, answerItems } from '../../openai/run-items.js';
import { streamGeneration } from '../../openai/stream-generation.js';
import type { GatewayDeps } from '../deps.js';
import type { Inference } from '../inference.js';
import { strictJson } from '../strict-json.js';
import { parseDeadline } from '../validation.js';
import { registrySnapshot } from './request.js';

/**
 * `POST /v1/chat/completions` and `POST /v1/completions`, served by the skill of the model named
 * (an openai-backed skill: vLLM, llama.cpp, Ollama upstream). Mounted by openai.ts, which
 * authenticates and answers errors in OpenAI's shape.
 */
export function openAiGenerateRoutes(deps: GatewayDeps, inference: Inference, tokens: TokenLimiter): Router {
  const { config, skills } = deps;
  const router = Router();
  const json = strictJson(config.BODY_LIMIT_BYTES);

  const generate = (kind: 'chat' | 'completion') =>
    async function generateRoute(req: Request, res: Response) {
      const body = parseGenerationRequest(kind, req.body, config.MAX_INPUT_CHARS);
      const snapshot = await registrySnapshot(skills);
      const model = findModel(snapshot, body.model, 'generation');
      const info = snapshot.catalogue.get(model.skill)!;
      const item = generationItem(model, body);
      const header = req.headers['x-deadline-ms'];
      const deadlineMs = parseDeadline(undefined, Array.isArray(header) ? header[0] : header, config.MAX_DEADLINE_MS);
      const call = {
        principal: req.principal,
        headers: req.headers,
        requestId: req.id,
        receivedAt: req.receivedAt,
        deadlineMs,
      };
      const admitted = await admitItems(deps, inference, snapshot, info, [item], call, res);
      const estimate = estimateTokens(body.text, body.maxTokens);
      await tokens.reserve(req.principal, estimate, res);
      const settle = (u: { prompt_tokens: number; completion_tokens: number }) =>
        tokens.settle(req.principal, model.id, estimate, { prompt: u.prompt_tokens, completion: u.completion_tokens });
      if (body.stream) {
        const closed = new AbortController();
        res.on('close', () => closed.abort());
        const log = () => req.log;
        const usage = await streamGeneration({
          deps,
          inference,
          admitted,
          body,
          model: model.id,
          requestId: req.id,
          res,
          closed: closed.signal,
          log,
        });
        if (usage) settle(usage);
        return;
      }
      const [answer] = await answerItems(inference, admitted, req.id);
      res.setHeader('X-Cache', answer!.cache);
      const created = Math.floor(Date.now() / 1000);
      const out = answer!.output as GenerationOutput;
      settle(usageOf(out));
      res.json(completionObject(body, req.id, created, model.id, out));
    };

  router.post('/v1/chat/completions', json, generate('chat'));
  router.post('/v1/completions', json, generate('completion'));
  return router;
}
