import { performance } from 'node:perf_hooks';
import express, { Router } from 'express';
import { AppError } from '../../errors/index.js';
import type { RegistrySnapshot } from '../../skills/registry.js';
import type { GatewayDeps } from '../deps.js';
import { fromWireTensor } from '../tensors.js';
import { parseInferBody, skillNamePattern } from '../validation.js';
import { describeModels } from './skill-models.js';

/** `GET /v1/skills`, `GET /v1/skills/:skill`, `POST /v1/skills/:skill/infer`. */
export function skillRoutes({ config, jobs, skills }: GatewayDeps): Router {
  const router = Router();
  const json = express.json({
    limit: config.BODY_LIMIT_BYTES,
    strict: false,
    type: ['application/json', 'application/*+json'],
  });

  async function snapshot(): Promise<RegistrySnapshot> {
    try {
      return await skills.get();
    } catch (err) {
      throw new AppError('QUEUE_UNAVAILABLE', 'the skill registry is not reachable', undefined, { cause: err });
    }
  }

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
          ...(info.models ? { models: describeModels(info.models, replicas) } : {}),
        };
      });
  }

  router.get('/v1/skills', async function listSkills(_req, res) {
    res.json({ skills: describe(await snapshot()) });
  });

  router.get('/v1/skills/:skill', async function getSkill(req, res) {
    const found = describe(await snapshot()).find((s) => s.name === req.params.skill);
    if (!found) throw new AppError('SKILL_NOT_FOUND', `no skill named "${req.params.skill.slice(0, 64)}"`);
    res.json(found);
  });

  router.post('/v1/skills/:skill/infer', json, async function infer(req, res) {
    const started = performance.now();
    const name = req.params.skill as string;
    const body = parseInferBody(req.body, config.MAX_INPUT_CHARS);
    const s = await snapshot();
    const info = skillNamePattern.test(name) ? s.catalogue.get(name) : undefined;
    if (!info) {
      throw new AppError('SKILL_NOT_FOUND', `no skill named "${name.slice(0, 64)}"`, {
        skills: [...s.catalogue.keys()].sort(),
      });
    }
    if (body.model !== undefined && !info.models) {
      throw new AppError('BAD_REQUEST', `model: ${name} hosts one model; choose what it does with "task"`, {
        field: 'model',
        tasks: info.tasks,
      });
    }
    // A skill hosting several models (onnx) takes the model's name as its task.
    const task = body.model ?? body.task ?? info.defaultTask;
    if (!info.tasks.includes(task)) {
      if (body.model !== undefined) {
        throw new AppError('BAD_REQUEST', `model: ${name} has no model "${task.slice(0, 64)}"`, {
          field: 'model',
          models: info.tasks,
        });
      }
      throw new AppError('UNKNOWN_TASK', `${name} has no task "${task}"`, { task, tasks: info.tasks });
    }
    if (!s.live.some((r) => r.name === name)) {
      throw new AppError('SKILL_UNAVAILABLE', `${name}: no replica is up`, { skill: name }, { retryAfterS: 1 });
    }
    const result = await jobs.run(
      {
        skill: name,
        requestId: req.id,
        enqueuedAt: Date.now(),
        item: {
          ...(body.tensors ? { tensors: body.tensors } : { text: body.input }),
          task,
          maxTokens: body.max_tokens ?? 0,
          temperature: body.temperature,
          modelVersion: body.model_version ?? '',
        },
      },
      config.REQUEST_TIMEOUT_MS,
    );
    const out = result.output;
    const timings = { ...result.timing, totalMs: Math.round((performance.now() - started) * 1000) / 1000 };
    if ('tensors' in out) {
      // The Open Inference Protocol's response shape, with our id, task and timings.
      const at = result.model.lastIndexOf('@');
      res.json({
        id: req.id,
        skill: name,
        task,
        model: result.model,
        model_name: at > 0 ? result.model.slice(0, at) : result.model,
        model_version: at > 0 ? result.model.slice(at + 1) : '',
        outputs: out.tensors.map(fromWireTensor),
        timings,
      });
      return;
    }
    res.json({
      id: req.id,
      skill: name,
      task,
      model: result.model,
      output: 'json' in out ? out.json : out.text,
      timings,
    });
  });

  return router;
}
