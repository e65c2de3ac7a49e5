import { Router } from 'express';
import { AppError } from '../../errors/index.js';
import { publicName } from '../../lib/public-name.js';
import type { RegistrySnapshot } from '../../skills/registry.js';
import type { GatewayDeps } from '../deps.js';
import { strictJson } from '../strict-json.js';
import type { InferService } from './infer.js';
import { registrySnapshot } from './request.js';
import { describeModels } from './skill-models.js';

/** `GET /v1/skills`, `GET /v1/skills/:skill`, `POST /v1/skills/:skill/infer`. */
export function skillRoutes({ config, skills }: GatewayDeps, serveInfer: InferService): Router {
  const router = Router();
  const json = strictJson(config.BODY_LIMIT_BYTES);

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
              // Opaque: the instance id names a host and port, which stay internal.
              instance: publicName(r.instance, 'skill'),
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

  // Most infer traffic never gets here: the gateway's fast path (fast-path.ts) serves plain JSON
  // requests with the same service. This route takes the other body types, charsets and codings.
  router.post('/v1/skills/:skill/infer', json, async function infer(req, res) {
    const call = {
      skill: req.params.skill as string,
      body: req.body as unknown,
      headers: req.headers,
      principal: req.principal,
      requestId: req.id,
      receivedAt: req.receivedAt,
      startedAt: req.startedAt,
    };
    res.json(await serveInfer(call, res));
  });

  router.get('/v1/skills', async function listSkills(_req, res) {
    res.json({ skills: describe(await snapshot()) });
  });

  router.get('/v1/skills/:skill/models', async function listModels(req, res) {
    const found = describe(await snapshot()).find((s) => s.name === req.params.skill);
    if (!found) throw new AppError('SKILL_NOT_FOUND', `no skill named "${req.params.skill.slice(0, 64)}"`);
    if (!found.models)
      throw new AppError('NOT_FOUND', `${found.name} serves one model (${found.model}), not a repository`);
    res.json({ skill: found.name, models: found.models });
  });

  router.get('/v1/skills/:skill', async function getSkill(req, res) {
    const found = describe(await snapshot()).find((s) => s.name === req.params.skill);
    if (!found) throw new AppError('SKILL_NOT_FOUND', `no skill named "${req.params.skill.slice(0, 64)}"`);
    res.json(found);
  });

  return router;
}
