import { randomUUID } from 'node:crypto';
import { startBenchCluster } from '../bench/cluster.js';
import { askSupervisor } from '../src/cluster/control.js';
import type { ClusterStatus } from '../src/cluster/status.js';
import type { Outcome } from './experiment.js';
import { startLoad } from './load.js';
import { phaseStats, recoveryMs } from './measure.js';

/** The autoscaler's windows, in seconds instead of minutes, so a scale-up and -down fit a run. */
export const AUTOSCALE_ENV: Record<string, string> = {
  SKILLS: 'nlp',
  AUTOSCALE: 'on',
  GATEWAY_COUNT: '2',
  GATEWAY_MIN: '2',
  GATEWAY_MAX: '3',
  SKILL_REPLICAS: '1',
  SKILL_REPLICAS_MIN: '1',
  SKILL_REPLICAS_MAX: '2',
  SCALE_SAMPLE_MS: '500',
  SCALE_UP_CPU_PERCENT: '20',
  SCALE_UP_WINDOW_MS: '3000',
  SCALE_DOWN_CPU_PERCENT: '5',
  SCALE_DOWN_WINDOW_MS: '5000',
  SCALE_COOLDOWN_MS: '2000',
  NGINX_CONN_PER_IP: '60000',
  LOG_LEVEL: 'warn',
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Scale up under rising load, and back down when it stops: a cluster of its own with the
 * autoscaler on and short windows. Heavy load (misses) until a pool grows, then a trickle of
 * cache hits until it shrinks back; every request of both phases is counted.
 */
export async function autoscaleExperiment(opts: {
  concurrency: number;
  print: (line: string) => void;
  basePort?: number;
  keyPrefix?: string;
  /** The most either phase may take. */
  phaseMs?: number;
}): Promise<Outcome> {
  const phaseMs = opts.phaseMs ?? 90_000;
  const cluster = await startBenchCluster(opts.print, {
    ...AUTOSCALE_ENV,
    ...(opts.basePort
      ? {
          PUBLIC_PORT: String(opts.basePort),
          GATEWAY_BASE_PORT: String(opts.basePort + 1),
          NGINX_STATUS_PORT: String(opts.basePort + 20),
        }
      : {}),
    KEY_PREFIX: opts.keyPrefix ?? `chaos-${randomUUID().slice(0, 8)}`,
  });
  const status = () => askSupervisor(cluster.config.RUN_DIR, { cmd: 'status' }, 10_000) as Promise<ClusterStatus>;
  const replicas = async () => Object.fromEntries((await status()).pools.map((p) => [p.key, p.replicas]));
  const key = cluster.headers.Authorization!.replace(/^Bearer /, '');
  const decisions: string[] = [];
  const note = async () => {
    for (const p of (await status()).pools) {
      const d = p.lastDecision;
      const line = d ? `${p.key} ${d.action} (${d.reason}) ${d.detail}` : '';
      if (d && d.action !== 'hold' && !decisions.includes(line)) decisions.push(line);
    }
  };
  try {
    const start = Date.now();
    const initial = await replicas();
    const heavy = startLoad({
      endpoint: cluster.endpoint,
      key,
      concurrency: opts.concurrency,
      maxMs: phaseMs,
      mix: { hit: 0.1, miss: 0.9, job: 0 },
    });
    let grew = false;
    while (!grew && Date.now() - start < phaseMs) {
      await sleep(1_000);
      const now = await replicas();
      grew = Object.keys(now).some((k) => now[k]! > initial[k]!);
      await note();
    }
    const upResult = await heavy.stop();
    const peak = await replicas();
    const downAt = Date.now();
    const light = startLoad({
      endpoint: cluster.endpoint,
      key,
      concurrency: 1,
      maxMs: phaseMs,
      mix: { hit: 1, miss: 0, job: 0 },
    });
    let shrank = false;
    while (grew && !shrank && Date.now() - downAt < phaseMs) {
      await sleep(1_000);
      const now = await replicas();
      shrank = Object.keys(now).every((k) => now[k]! <= initial[k]!);
      await note();
    }
    await sleep(2_000);
    const downResult = await light.stop();
    const end = Date.now();
    const samples = [...upResult.samples, ...downResult.samples];
    const up = phaseStats(upResult.samples, 'rising load (scale up)', start, downAt);
    const down = phaseStats(downResult.samples, 'load gone (scale down)', downAt, end);
    const failed = up.failed + up.shed + down.failed + down.shed;
    return {
      name: 'autoscale',
      title: 'Autoscale: up under rising load, down when it stops',
      hypothesis:
        'The supervisor adds a gateway or a skill replica once CPU stays above its threshold for the window, and removes it once CPU stays low; no request fails while processes come and go (new gateways join nginx only when ready; leaving ones drain; a leaving replica withdraws and keeps serving for a registry refresh).',
      injected: `${opts.concurrency} clients of cache misses, then one client of cache hits; windows ${AUTOSCALE_ENV.SCALE_UP_WINDOW_MS} ms up / ${AUTOSCALE_ENV.SCALE_DOWN_WINDOW_MS} ms down, thresholds ${AUTOSCALE_ENV.SCALE_UP_CPU_PERCENT} % / ${AUTOSCALE_ENV.SCALE_DOWN_CPU_PERCENT} %`,
      phases: [up, down],
      recoveryMs: recoveryMs(samples, start, end),
      jobsAccepted: 0,
      jobsLost: 0,
      breakerStates: {},
      restarts: {},
      checks: [
        { what: 'a pool grew under load', ok: grew, detail: `${JSON.stringify(initial)} → ${JSON.stringify(peak)}` },
        { what: 'and shrank back when the load stopped', ok: shrank },
        { what: 'no request failed or was refused during either', ok: failed === 0, detail: `${failed}` },
      ],
      notes: decisions.map((d) => `decision: ${d}`),
    };
  } finally {
    await cluster.stop().catch(() => undefined);
  }
}
