import { performance } from 'node:perf_hooks';
import express, { Router } from 'express';
import { AppError } from '../../errors/index.js';
import type { WireTensor } from '../../skills/proto.js';
import type { RegistrySnapshot } from '../../skills/registry.js';
import { parseCacheControl } from '../../cache/cache-control.js';
import type { GatewayDeps } from '../deps.js';
import type { Inference } from '../inference.js';
import { fromWireTensor } from '../tensors.js';
import { parseInferBody } from '../validation.js';
import { enforceLimit, registrySnapshot, resolveRequest } from './request.js';
import { describeModels } from './skill-models.js';

/** `GET /v1/skills`, `GET /v1/skills/:skill`, `POST /v1/skills/:skill/infer`. */
export function skillRoutes({ config, skills }: GatewayDeps, inference: Inference): Router {
  const router = Router();
  const json = express.json({
    limit: config.BODY_LIMIT_BYTES,
    strict: false,
    type: ['application/json', 'application/*+json'],
  });

  const snapshot = () => registrySnapshot(skills);

  function describe(s: RegistrySnapshot) {
    return [...s.catalogue.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((info) => {
        const replicas = s.live.filter((r) => r.name === info.name);
        return {
          name: info.name,
          backend: info.backend,
          model: info.model,
          tasks: info.tasks,
          default_task: info.defaultTask,
          deterministic: info.deterministic,
          replicas: replicas.length,
          status: replicas.length > 0 ? 'available' : 'unavailable',
          // What is live right now: one entry per replica, with its model, state and capacity.
          instances: replicas
            .sort((a, b) => a.instance.localeCompare(b.instance))
            .map((r) => ({
              instance: r.instance,
              version: r.version ?? null,
              model: r.model,
              state: r.state ?? null,
              capacity: r.capacity
                ? { max_concurrent: r.capacity.maxConcurrent, max_batch: r.capacity.maxBatch }
                : null,
              started_at: new Date(r.startedAt).toISOString(),
            })),
          ...(info.models ? { models: describeModels(info.models, replicas) } : {}),
        };
      });
  }

  // First: the route the traffic is for (Express tries routes in order).
  router.post('/v1/skills/:skill/infer', json, async function infer(req, res) {
    const started = performance.now();
    const name = req.params.skill as string;
    const body = parseInferBody(req.body, config.MAX_INPUT_CHARS);
    const directives = parseCacheControl(req.headers['cache-control']);
    const { info, item, deadlineMs, snapshot: s } = resolveRequest(config, await snapshot(), name, body, req);
    const plan = inference.plan(req.principal, info, item, directives, deadlineMs, req.receivedAt);
    const admission = await inference.admit(req.principal, plan);
    enforceLimit(res, admission.limit, config, req.principal.tier);
    const answerFromCache = admission.entry !== undefined;
    if (!answerFromCache && !s.live.some((r) => r.name === name)) {
      throw new AppError('SKILL_UNAVAILABLE', `${name}: no replica is up`, { skill: name }, { retryAfterS: 1 });
    }
    const answer = await inference.answer(plan, admission, req.id);
    res.setHeader('X-Cache', answer.cache);
    if (answer.ageS !== undefined) res.setHeader('Age', String(answer.ageS));
    if (answer.degraded) res.setHeader('X-Degraded', answer.degraded);
    const timings = { ...answer.job?.timing, totalMs: Math.round((performance.now() - started) * 1000) / 1000 };
    if (item.tensors) {
      // The Open Inference Protocol's response shape, with our id, task and timings.
      const at = answer.model.lastIndexOf('@');
      res.json({
        id: req.id,
        skill: name,
        task: item.task,
        model: answer.model,
        model_name: at > 0 ? answer.model.slice(0, at) : answer.model,
        model_version: at > 0 ? answer.model.slice(at + 1) : '',
        outputs: (answer.output as WireTensor[]).map(fromWireTensor),
        timings,
      });
      return;
    }
    res.json({
      id: req.id,
      skill: name,
      task: item.task,
      model: answer.model,
      output: answer.output,
      timings,
    });
  });

  router.get('/v1/skills', async function listSkills(_req, res) {
    res.json({ skills: describe(await snapshot()) });
  });

  router.get('/v1/skills/:skill', async function getSkill(req, res) {
    const found = describe(await snapshot()).find((s) => s.name === req.params.skill);
    if (!found) throw new AppError('SKILL_NOT_FOUND', `no skill named "${req.params.skill.slice(0, 64)}"`);
    res.json(found);
  });

  return router;
}
