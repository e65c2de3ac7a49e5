import type { IncomingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Principal } from '../../auth/key-store.js';
import { parseCacheControl } from '../../cache/cache-control.js';
import { AppError } from '../../errors/index.js';
import type { WireTensor } from '../../skills/proto.js';
import type { Histogram } from 'prom-client';
import type { GatewayDeps } from '../deps.js';
import { observePhases, PhaseClock, serverTiming } from '../phases.js';
import type { Inference } from '../inference.js';
import { fromWireTensor } from '../tensors.js';
import { parseInferBody } from '../validation.js';
import { enforceLimit, type HeaderSink, registrySnapshot, resolveRequest } from './request.js';

/** One `POST /v1/skills/:skill/infer`, whichever HTTP layer received it. */
export interface InferCall {
  skill: string;
  /** The parsed JSON body; undefined when the request had none of a JSON type. */
  body: unknown;
  headers: IncomingHttpHeaders;
  principal: Principal;
  requestId: string;
  /** Epoch ms when the request reached the cluster. */
  receivedAt: number;
  /** performance.now() when the gateway received it: the start of the Server-Timing phases. */
  startedAt?: number;
}

export type InferService = (call: InferCall, res: HeaderSink) => Promise<object>;

/**
 * The infer endpoint's work, from the parsed body to the answer's JSON: validation, the
 * registry, rate limit and cache (one Redis round trip), then the cache, the queue or the skill.
 * Response headers go to `res`; errors are thrown as AppErrors. Shared by the Express route and
 * the gateway's fast path (fast-path.ts), so the two cannot drift apart.
 */
export function createInferService(
  { config, skills }: GatewayDeps,
  inference: Inference,
  phaseHistogram?: Histogram<'phase'>,
): InferService {
  return async function infer(call, res) {
    const started = performance.now();
    const clock = new PhaseClock(call.startedAt ?? started);
    clock.mark('auth');
    const { skill: name, principal } = call;
    const body = parseInferBody(call.body, config.MAX_INPUT_CHARS);
    const directives = parseCacheControl(call.headers['cache-control']);
    const resolved = resolveRequest(config, await registrySnapshot(skills), name, body, call.headers);
    const { info, item, deadlineMs, snapshot } = resolved;
    const plan = inference.plan(principal, info, item, directives, deadlineMs, call.receivedAt);
    const admission = await inference.admit(principal, plan);
    clock.mark('admit');
    enforceLimit(res, admission.limit, config, principal.tier);
    const answerFromCache = admission.entry !== undefined;
    if (!answerFromCache && !snapshot.live.some((r) => r.name === name)) {
      throw new AppError('SKILL_UNAVAILABLE', `${name}: no replica is up`, { skill: name }, { retryAfterS: 1 });
    }
    const answer = await inference.answer(plan, admission, call.requestId, clock);
    const phases = clock.finish();
    res.setHeader('Server-Timing', serverTiming(phases));
    if (phaseHistogram) observePhases(phaseHistogram, phases);
    res.setHeader('X-Cache', answer.cache);
    if (answer.ageS !== undefined) res.setHeader('Age', String(answer.ageS));
    if (answer.degraded) res.setHeader('X-Degraded', answer.degraded);
    const timings = { ...answer.job?.timing, totalMs: Math.round((performance.now() - started) * 1000) / 1000 };
    if (item.tensors) {
      // The Open Inference Protocol's response shape, with our id, task and timings.
      const at = answer.model.lastIndexOf('@');
      return {
        id: call.requestId,
        skill: name,
        task: item.task,
        model: answer.model,
        model_name: at > 0 ? answer.model.slice(0, at) : answer.model,
        model_version: at > 0 ? answer.model.slice(at + 1) : '',
        outputs: (answer.output as WireTensor[]).map(fromWireTensor),
        timings,
      };
    }
    return { id: call.requestId, skill: name, task: item.task, model: answer.model, output: answer.output, timings };
  };
}
