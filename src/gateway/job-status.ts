/** A job's public status and times, consistent with each other. */
export interface JobStatus {
  status: 'queued' | 'running' | 'completed' | 'failed' | 'unknown';
  startedAt: number | undefined;
  finishedAt: number | undefined;
}

const publicState: Record<string, JobStatus['status']> = {
  waiting: 'queued',
  prioritized: 'queued',
  delayed: 'queued',
  'waiting-children': 'queued',
  active: 'running',
  completed: 'completed',
  failed: 'failed',
};

/**
 * The status of a job from its BullMQ state and its fields, read in that order (state first):
 * a job only moves forward, and BullMQ sets `processedOn` with the move to active and
 * `finishedOn` with the move to completed or failed, so fields read after the state are at
 * least as far along. Where they are further (the job moved on between the two reads), the
 * fields win. Whatever happens, a running job has a start time and a finished one a finish time.
 */
export function jobStatus(
  state: string,
  job: { processedOn?: number; finishedOn?: number; failedReason?: string },
): JobStatus {
  const startedAt = job.processedOn || undefined;
  const finishedAt = job.finishedOn || undefined;
  let status = publicState[state] ?? 'unknown';
  if (finishedAt !== undefined) status = job.failedReason ? 'failed' : 'completed';
  else if (status === 'completed' || status === 'failed') status = 'unknown';
  if (status === 'running' && startedAt === undefined) status = 'queued';
  return { status, startedAt: finishedAt !== undefined ? (startedAt ?? finishedAt) : startedAt, finishedAt };
}
