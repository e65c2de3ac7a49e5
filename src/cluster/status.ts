import type { ManagedProcess } from './managed-process.js';
import type { ControlRequest } from './control.js';
import type { PoolView, ProcessView, Scaler } from './scaler.js';

export interface BreakerView {
  /** The process that holds the breaker. */
  process: string;
  /** Its labels as Prometheus shows them: `dependency="redis"`, `skill="nlp",replica="…"`. */
  labels: string;
  state: 'closed' | 'open' | 'half-open';
}

export interface ClusterStatus {
  supervisorPid: number;
  endpoint: string;
  processes: ProcessView[];
  pools: PoolView[];
  breakers: BreakerView[];
}

const BREAKER_SERIES = /^(skillserve_(?:skill_)?breaker_state)\{([^}]*)\}\s+(\d+)/;
const STATES = ['closed', 'open', 'half-open'] as const;

/** Every circuit breaker's state, read from the processes' own /metrics (0 closed, 1 open, 2 half-open). */
async function breakers(processes: readonly ManagedProcess[], host: string): Promise<BreakerView[]> {
  const views = await Promise.all(
    processes
      .filter((p) => p.adminPort && /^(gateway|dispatcher)-/.test(p.spec.name))
      .map(async (p) => {
        try {
          const res = await fetch(`http://${host}:${p.adminPort}/metrics`, { signal: AbortSignal.timeout(2_000) });
          const out: BreakerView[] = [];
          for (const line of (await res.text()).split('\n')) {
            const m = BREAKER_SERIES.exec(line);
            if (!m) continue;
            const labels = m[2]!
              .split(',')
              .filter((l) => !l.startsWith('role='))
              .join(',');
            out.push({ process: p.spec.name, labels, state: STATES[Number(m[3])] ?? 'closed' });
          }
          return out;
        } catch {
          return [];
        }
      }),
  );
  return views.flat();
}

/** What the control channel answers: `status` and `scale`. */
export async function handleControl(
  req: ControlRequest,
  scaler: Scaler,
  endpoint: string,
  host = '127.0.0.1',
): Promise<unknown> {
  if (req.cmd === 'scale') {
    const counts = req.counts as unknown;
    if (!counts || typeof counts !== 'object') throw new Error('scale needs counts, e.g. {"gateway":3}');
    return { changes: await scaler.scale(counts as Record<string, number>) };
  }
  if (req.cmd === 'status') {
    const status: ClusterStatus = {
      supervisorPid: process.pid,
      endpoint,
      processes: scaler.processes(),
      pools: scaler.poolViews(),
      breakers: await breakers(scaler.all(), host),
    };
    return status;
  }
  throw new Error(`unknown command ${JSON.stringify((req as { cmd?: unknown }).cmd)}`);
}

const mb = (b?: number) => (b === undefined ? '-' : `${Math.round(b / 1024 / 1024)} MB`);
const dur = (s?: number) =>
  s === undefined ? '-' : s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;

/** `skillserve status` as a person reads it. */
export function formatStatus(s: ClusterStatus): string[] {
  const lines = [
    `${'process'.padEnd(20)} ${'pid'.padEnd(8)} ${'state'.padEnd(8)} ${'cpu'.padStart(7)} ${'rss'.padStart(8)} ${'restarts'.padStart(8)} ${'uptime'.padStart(7)}`,
  ];
  for (const p of s.processes)
    lines.push(
      `${p.name.padEnd(20)} ${String(p.pid ?? '-').padEnd(8)} ${p.state.padEnd(8)} ${(p.cpuPercent === undefined ? '-' : `${p.cpuPercent} %`).padStart(7)} ${mb(p.rssBytes).padStart(8)} ${String(p.restarts).padStart(8)} ${dur(p.uptimeS).padStart(7)}`,
    );
  lines.push(
    '',
    `${'role'.padEnd(14)} ${'replicas'.padEnd(9)} ${'bounds'.padEnd(7)} ${'cpu'.padStart(7)}  last decision`,
  );
  for (const p of s.pools) {
    const d = p.lastDecision;
    lines.push(
      `${p.key.padEnd(14)} ${String(p.replicas).padEnd(9)} ${`${p.bounds.min}-${p.bounds.max}`.padEnd(7)} ${(p.cpuPercent === undefined ? '-' : `${p.cpuPercent} %`).padStart(7)}  ${
        d
          ? `${d.action} (${d.reason}) ${d.detail}, ${new Date(d.at).toISOString()}`
          : p.autoscale
            ? 'none yet'
            : 'not autoscaled'
      }`,
    );
  }
  lines.push('', 'breakers:');
  if (s.breakers.length === 0) lines.push('  (none reported)');
  for (const b of s.breakers) lines.push(`  ${b.process.padEnd(16)} ${b.labels.padEnd(40)} ${b.state}`);
  return lines;
}
