import { randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import type { RedisClient } from '../lib/redis.js';
import type { Config } from '../config/index.js';
import { AppError } from '../errors/index.js';
import type { Logger } from '../observability/logger.js';
import type { SkillClientPool } from '../skills/client-pool.js';
import { inferStreamOnce } from './infer-stream-once.js';
import { encodeFailure, type InferJobData, type InferJobResult } from './job.js';
import { HEARTBEAT_MS, TokenStreamWriter } from './token-stream.js';

type Processor = (job: Job<InferJobData, InferJobResult>, token?: string) => Promise<InferJobResult>;

export interface StreamJobDeps {
  config: Config;
  redis: RedisClient;
  pool: Pick<SkillClientPool, 'pick'>;
  logger: Logger;
}

/**
 * A skill worker's processor that sends streamed jobs (`item.stream`) through the skill's
 * InferStream, tokens into the job's token stream (token-stream.ts), and every other job to
 * `processor` (the batcher or one call) unchanged. A streamed job is never batched: its tokens
 * must flow as the skill produces them. It still completes with its whole result, so the
 * gateways' cache and coalescing treat it like any other job.
 */
export function withStreaming(processor: Processor, deps: StreamJobDeps): Processor {
  const owner = randomUUID();
  return async function process(job, token) {
    if (!job.data.item.stream) return processor(job, token);
    try {
      return await streamJob(job, deps, owner);
    } catch (err) {
      throw encodeFailure(err);
    }
  };
}

async function streamJob(
  job: Job<InferJobData, InferJobResult>,
  deps: StreamJobDeps,
  owner: string,
): Promise<InferJobResult> {
  const { skill, item } = job.data;
  const id = job.id ?? '';
  const deadlineAt = job.data.deadlineAt ?? Date.now() + deps.config.SKILL_CALL_TIMEOUT_MS;
  const queueMs = Date.now() - job.data.enqueuedAt;
  if (deadlineAt <= Date.now())
    throw new AppError('DEADLINE_EXCEEDED', `${skill}: the deadline passed while the job waited`);
  const writer = new TokenStreamWriter(deps.redis, deps.config.KEY_PREFIX, id, deadlineAt);
  if (!(await writer.claim(owner))) {
    // The dispatcher that started this stream stopped (its readers have given up by now); a
    // second producer would send its tokens again from the start.
    throw new AppError('SKILL_ERROR', `${skill}: the stream's producer stopped mid-stream; retry the request`);
  }
  const cancel = new AbortController();
  const heartbeat = setInterval(() => {
    writer.ping();
    writer.readersGone().then(
      (gone) => gone && cancel.abort(),
      () => undefined,
    );
  }, HEARTBEAT_MS);
  try {
    const budget = Math.min(deps.config.SKILL_CALL_TIMEOUT_MS, Math.max(1, deadlineAt - Date.now()));
    const onDelta = (text: string) => writer.delta(text);
    const result = await inferStreamOnce(deps.pool, skill, id, item, budget, onDelta, cancel.signal);
    const output = 'json' in result.output ? (result.output.json as Record<string, unknown>) : {};
    await writer.end(output);
    return { ...result, timing: { ...result.timing, queueMs } };
  } catch (err) {
    const appError = cancel.signal.aborted
      ? new AppError('SKILL_TIMEOUT', `${skill}: every reader of the stream went away`)
      : err instanceof AppError
        ? err
        : new AppError('SKILL_ERROR', undefined, undefined, { cause: err });
    await writer
      .error(appError.toJSON())
      .catch((e: unknown) => deps.logger.warn({ err: e, id }, 'could not end a token stream'));
    throw appError;
  } finally {
    clearInterval(heartbeat);
  }
}
