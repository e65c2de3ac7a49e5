import { createHash, randomUUID } from 'node:crypto';
import { Router } from 'express';
import type { Job } from 'bullmq';
import { canonicalJson } from '../../cache/cache-key.js';
import { AppError } from '../../errors/index.js';
import { decodeFailure, type InferJobData, type InferJobResult, outputValue } from '../../queue/job.js';
import type { GatewayDeps } from '../deps.js';
import type { Inference } from '../inference.js';
import { idempotencyKey } from '../idempotency-key.js';
import { jobStatus } from '../job-status.js';
import { queueReachable } from '../redis-stall.js';
import { strictJson } from '../strict-json.js';
import { parseInferBody, skillNamePattern } from '../validation.js';
import { enforceLimit, registrySnapshot, resolveRequest } from './request.js';

const jobIdPattern = /^[ai]-[A-Za-z0-9-]{1,64}$/;

/**
 * Async jobs: `POST /v1/jobs` answers 202 with an id at once; `GET /v1/jobs/:id` gives state,
 * timings and result. Public ids are `<skill>.<job id>`, so a lookup goes to the right queue.
 * Jobs belong to the tenant that submitted them: any other tenant gets 404, as if no such job.
 */
export function jobRoutes(deps: GatewayDeps, inference: Inference): Router {
  const { config, jobs, skills } = deps;
  const router = Router();
  // application/json only, as before: express.json's default type.
  const json = strictJson(config.BODY_LIMIT_BYTES, 'application/json');

  const snapshot = () => registrySnapshot(skills);

  router.post('/v1/jobs', json, async function submitJob(req, res) {
    const { skill, rest } = splitSkill(req.body);
    const body = parseInferBody(rest, config.MAX_INPUT_CHARS);
    const { info, item, deadlineMs } = resolveRequest(config, await snapshot(), skill, body, req.headers);
    const key = idempotencyKey(req.headers);
    const plan = inference.plan(
      req.principal,
      info,
      item,
      { noStore: true, noCache: true },
      deadlineMs,
      req.receivedAt,
    );
    enforceLimit(res, (await inference.admit(req.principal, plan)).limit, config, req.principal.tier);
    queueReachable(deps);
    await jobs.admit(skill);

    const requestHash = sha256(canonicalJson({ skill, item, deadlineMs }));
    const jobId = key ? `i-${sha256(`${req.principal.tenantId}\n${key}`).slice(0, 40)}` : `a-${randomUUID()}`;
    const job = await jobs.submit(
      {
        skill,
        requestId: req.id,
        enqueuedAt: Date.now(),
        tenantId: req.principal.tenantId,
        // Absolute from when the request reached the cluster, like a synchronous request's.
        deadlineAt: deadlineMs === undefined ? undefined : req.receivedAt + deadlineMs,
        requestHash,
        item,
      },
      {
        jobId,
        priority: jobs.priority(skill, { id: req.principal.tenantId, tier: req.principal.tier }),
        retentionS: config.ASYNC_JOB_RETENTION_S,
      },
    );
    if (job.data.requestHash !== requestHash || job.data.tenantId !== req.principal.tenantId) {
      throw new AppError('IDEMPOTENCY_KEY_REUSED', undefined, { header: 'Idempotency-Key' });
    }
    const replay = job.data.requestId !== req.id;
    const id = `${skill}.${jobId}`;
    res.setHeader('Location', `/v1/jobs/${id}`);
    res.status(replay ? 200 : 202).json(await describeJob(id, job, () => jobs.getJob(skill, jobId)));
  });

  router.get('/v1/jobs/:id', async function getJob(req, res) {
    const id = String(req.params.id);
    const dot = id.indexOf('.');
    const skill = id.slice(0, dot);
    const jobId = id.slice(dot + 1);
    const notFound = new AppError('JOB_NOT_FOUND', `no job "${id.slice(0, 100)}"`);
    if (dot < 1 || !skillNamePattern.test(skill) || !jobIdPattern.test(jobId)) throw notFound;
    queueReachable(deps);
    const job = await jobs.getJob(skill, jobId);
    if (!job || job.data.tenantId !== req.principal.tenantId) throw notFound;
    res.json(await describeJob(id, job, () => jobs.getJob(skill, jobId)));
  });

  return router;
}

function splitSkill(body: unknown): { skill: string; rest: unknown } {
  if (body === undefined || typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { skill: '', rest: body };
  }
  const { skill, ...rest } = body as Record<string, unknown>;
  if (typeof skill !== 'string' || skill.length === 0) {
    throw new AppError('BAD_REQUEST', 'skill: the name of the skill to run, e.g. "nlp"', {
      problems: [{ field: 'skill', problem: 'required string' }],
    });
  }
  return { skill, rest };
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** The job as the API shows it; `reload` reads it again after its state (see jobStatus). */
async function describeJob(
  id: string,
  stale: Job<InferJobData, InferJobResult>,
  reload: () => Promise<Job<InferJobData, InferJobResult> | undefined>,
) {
  const rawState = await stale.getState();
  const job = (await reload()) ?? stale;
  const { status: state, startedAt, finishedAt } = jobStatus(rawState, job);
  const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : null);
  const result = state === 'completed' ? (job.returnvalue as InferJobResult | null) : null;
  return {
    id,
    skill: job.data.skill,
    task: job.data.item.task,
    status: state,
    created_at: iso(job.timestamp),
    started_at: iso(startedAt),
    finished_at: iso(finishedAt),
    ...(result
      ? {
          model: result.model,
          output: outputValue(result),
          timings: result.timing,
        }
      : {}),
    ...(state === 'failed' ? { error: decodeFailure(job.failedReason).toJSON() } : {}),
  };
}
