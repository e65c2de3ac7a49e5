import { parseArgs } from 'node:util';
import type { Config } from '../config/index.js';
import { UsageError } from '../lib/usage-error.js';
import { SkillClient } from '../skills/client.js';
import { hostPort } from '../skills/advertise.js';

export const probeUsage = `Usage: skillserve probe [http|grpc] [--port N] [--path /readyz] [--service NAME] [--host H] [--timeout-ms N]

  http (default)  GET http://<host>:<port><path> on the role's admin port (METRICS_PORT), /readyz
                  by default; healthy on a 2xx answer
  grpc            grpc.health.v1 Check on a skill's port (SKILL_PORT); healthy when SERVING

Exits 0 when healthy, 1 when not, 2 on a usage error. For container health checks and exec
probes: no curl or grpc_health_probe needed in the image.`;

export interface ProbeTarget {
  kind: 'http' | 'grpc';
  host: string;
  port: number;
  /** HTTP path (http) or health service name (grpc; '' = the whole server). */
  path: string;
  timeoutMs: number;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]']);

/** What `skillserve probe <args>` checks; ports default to the role's own configuration. */
export function probeTarget(config: Config, args: string[]): ProbeTarget {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      path: { type: 'string' },
      service: { type: 'string' },
      host: { type: 'string' },
      'timeout-ms': { type: 'string', default: '2000' },
    },
  });
  const kind = positionals[0] ?? 'http';
  if ((kind !== 'http' && kind !== 'grpc') || positionals.length > 1) {
    throw new UsageError(`unknown probe "${positionals.join(' ')}"\n${probeUsage}`);
  }
  const portVar = kind === 'http' ? 'METRICS_PORT' : 'SKILL_PORT';
  const port = values.port !== undefined ? Number(values.port) : config[portVar];
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(
      values.port !== undefined
        ? `--port must be a port number (got "${values.port}")`
        : `${portVar} is 0 (any free port), so the probe cannot know it: set ${portVar} or give --port`,
    );
  }
  const timeoutMs = Number(values['timeout-ms']);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new UsageError('--timeout-ms must be a positive integer');
  const path = kind === 'http' ? (values.path ?? '/readyz') : (values.service ?? '');
  if (kind === 'http' && !path.startsWith('/')) throw new UsageError(`--path must start with "/" (got "${path}")`);
  // A role bound to every interface answers on loopback; one bound to one address only there.
  const host = values.host ?? (WILDCARDS.has(config.HOST) ? '127.0.0.1' : config.HOST);
  return { kind, host, port, path, timeoutMs };
}

/** Runs one probe; never throws: an unreachable target is unhealthy, with the reason. */
export async function runProbe(target: ProbeTarget): Promise<{ healthy: boolean; detail: string }> {
  const address = hostPort(target.host, target.port);
  try {
    if (target.kind === 'http') {
      const url = `http://${address}${target.path}`;
      const res = await fetch(url, { signal: AbortSignal.timeout(target.timeoutMs), redirect: 'manual' });
      const body = (await res.text()).slice(0, 500);
      return { healthy: res.ok, detail: `${url}: ${res.status} ${body}`.trim() };
    }
    const client = new SkillClient('probe', address);
    try {
      const status = await client.check(target.timeoutMs, target.path);
      return { healthy: status === 'SERVING', detail: `grpc.health.v1 ${address} "${target.path}": ${status}` };
    } finally {
      client.close();
    }
  } catch (err) {
    return { healthy: false, detail: `${target.kind} ${address}: ${(err as Error).message}` };
  }
}
