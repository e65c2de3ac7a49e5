import { fileURLToPath } from 'node:url';
import { type RunningCluster, startCluster } from '../../src/cluster/supervisor.js';
import type { Config } from '../../src/config/index.js';

export const cliPath = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

/** Starts the real cluster (child processes, real nginx) for a test; events go to `events`. */
export async function startTestCluster(
  config: Config,
  env: NodeJS.ProcessEnv,
): Promise<RunningCluster & { events: string[] }> {
  const events: string[] = [];
  const cluster = await startCluster({ config, env, cliPath, print: (line) => events.push(line) });
  return Object.assign(cluster, { events });
}

export interface HttpResult {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

/** One HTTP request; the body is parsed as JSON when it is JSON. */
export async function http(url: string, init: RequestInit & { json?: unknown } = {}): Promise<HttpResult> {
  const { json, ...rest } = init;
  const res = await fetch(url, {
    ...rest,
    ...(json !== undefined
      ? {
          method: rest.method ?? 'POST',
          body: JSON.stringify(json),
          headers: { 'content-type': 'application/json', ...rest.headers },
        }
      : {}),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, body, text };
}

/** `http` with the cluster's development key on every request. */
export function withDevKey(cluster: () => { devKey: { key: string } }) {
  return (url: string, init: RequestInit & { json?: unknown } = {}) =>
    http(url, {
      ...init,
      headers: { authorization: `Bearer ${cluster().devKey.key}`, ...(init.headers as Record<string, string>) },
    });
}

/**
 * The internal admin URLs (`/metrics`, `/healthz`, detailed `/readyz`) of the cluster's processes
 * whose name starts with `prefix` (`gateway`, `dispatcher`, `skill-nlp`), once each has reported
 * its admin port.
 */
export async function adminUrls(cluster: RunningCluster, prefix: string, timeoutMs = 15_000): Promise<string[]> {
  const chosen = cluster.processes.filter((p) => p.spec.name.startsWith(prefix));
  const deadline = Date.now() + timeoutMs;
  while (chosen.some((p) => p.adminPort === undefined)) {
    if (Date.now() > deadline) throw new Error(`no admin port reported by ${prefix}* within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return chosen.map((p) => `http://127.0.0.1:${p.adminPort}`);
}
