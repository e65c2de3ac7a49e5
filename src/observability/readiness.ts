/** One dependency a readiness check asks; resolves when healthy, throws a short reason otherwise. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
  /** The process still serves without it (e.g. a gateway without Redis): failing makes it `degraded`, not unready. */
  degradesOnly?: boolean;
}

export type ReadinessStatus = 'ready' | 'degraded' | 'not_ready';

/** What a readiness run found: the status for everyone, the details for the internal port only. */
export interface ReadinessReport {
  status: ReadinessStatus;
  failing?: string[];
  degraded?: string[];
  /** Per check: `ok`, or the reason it failed (may carry a driver's message: internal only). */
  checks: Record<string, string>;
}

/** How long one readiness check may take before it counts as failed. */
const CHECK_TIMEOUT_MS = 1_500;

/** Runs every check at once, each bounded in time, and sums them up. */
export async function runReadiness(checks: ReadinessCheck[], shuttingDown = false): Promise<ReadinessReport> {
  const results = await Promise.all(
    checks.map(async ({ name, check, degradesOnly }) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
      });
      try {
        await Promise.race([check(), timeout]);
        return [name, 'ok', degradesOnly] as const;
      } catch (err) {
        return [name, (err as Error).message || 'failed', degradesOnly] as const;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const failing = results.filter(([, v, d]) => v !== 'ok' && !d).map(([k]) => k);
  const degraded = results.filter(([, v, d]) => v !== 'ok' && d).map(([k]) => k);
  if (shuttingDown) failing.push('shutting_down');
  return {
    status: failing.length > 0 ? 'not_ready' : degraded.length > 0 ? 'degraded' : 'ready',
    ...(failing.length > 0 ? { failing } : {}),
    ...(degraded.length > 0 ? { degraded } : {}),
    checks: Object.fromEntries(results.map(([k, v]) => [k, v])),
  };
}

/**
 * The HTTP status a readiness report answers with. Degraded still takes traffic: taking every
 * gateway out because Redis is down would turn a degraded cluster into a dead one.
 */
export function readinessHttpStatus(report: Pick<ReadinessReport, 'status'>): 200 | 503 {
  return report.status === 'not_ready' ? 503 : 200;
}
