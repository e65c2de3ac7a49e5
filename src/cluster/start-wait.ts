import type { ManagedProcess } from './managed-process.js';

/** One thing start-up waits for: resolves undefined when ready, else a short reason why not. */
export interface StartProbe {
  name: string;
  check(): Promise<string | undefined>;
}

/** How often the probes are asked, and how often the ones still waiting are printed. */
const POLL_MS = 250;
const REPORT_EVERY_MS = 5_000;

interface JsonAnswer {
  status: number;
  /** The parsed body, when it was JSON (readyz reports, the skills listing). */
  body: { status?: string; checks?: Record<string, string>; skills?: { name: string; status: string }[] } | undefined;
  text: string;
}

async function fetchJson(url: string, init: RequestInit = {}): Promise<JsonAnswer> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(2_000) });
  const text = await res.text();
  let body: JsonAnswer['body'];
  try {
    body = JSON.parse(text) as JsonAnswer['body'];
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text };
}

/**
 * A role's own readiness, from its internal admin port: ready only when its `/readyz` says
 * `ready` (a gateway, a skill SERVING and announced, a dispatcher consuming every skill's queue);
 * otherwise the failing checks and their reasons.
 */
export function adminProbe(p: ManagedProcess, host: string): StartProbe {
  return {
    name: p.spec.name,
    async check() {
      if (p.pid === undefined) return 'not running';
      if (p.adminPort === undefined) return 'starting (no admin port yet)';
      try {
        const { body, text } = await fetchJson(`http://${host}:${p.adminPort}/readyz`);
        if (body?.status === 'ready') return undefined;
        const checks = body?.checks ?? {};
        const failing = Object.entries(checks).filter(([, v]) => v !== 'ok');
        if (failing.length === 0) return `${body?.status ?? text.slice(0, 80)}`;
        return failing.map(([k, v]) => `${k}: ${v}`.slice(0, 120)).join('; ');
      } catch (err) {
        return `admin port does not answer (${(err as Error).message})`;
      }
    },
  };
}

/**
 * What clients will see through one gateway: every skill the cluster starts is in its catalogue
 * with a live replica, so a request right after start-up gets neither 404 SKILL_NOT_FOUND nor
 * 503 SKILL_UNAVAILABLE. Asked with the development key, as a client would.
 */
export function skillsProbe(name: string, gatewayUrl: string, key: string, skills: readonly string[]): StartProbe {
  return {
    name,
    async check() {
      try {
        const { status, body, text } = await fetchJson(`${gatewayUrl}/v1/skills`, {
          headers: { authorization: `Bearer ${key}` },
        });
        if (status !== 200) return `GET /v1/skills: ${status} ${text.slice(0, 120)}`;
        const seen = new Map((body?.skills ?? []).map((s) => [s.name, s.status]));
        const missing = skills.filter((s) => seen.get(s) !== 'available');
        if (missing.length === 0) return undefined;
        return missing.map((s) => `${s} ${seen.has(s) ? 'has no live replica yet' : 'not registered yet'}`).join('; ');
      } catch (err) {
        return `does not answer (${(err as Error).message})`;
      }
    },
  };
}

/** The public endpoint through nginx. */
export function publicProbe(endpoint: string): StartProbe {
  return {
    name: 'nginx',
    async check() {
      try {
        const { status, body } = await fetchJson(`${endpoint}/readyz`);
        return status === 200 && body?.status === 'ready' ? undefined : `${endpoint}/readyz: ${status}`;
      } catch (err) {
        return `${endpoint} does not answer (${(err as Error).message})`;
      }
    },
  };
}

/**
 * Asks every probe until all are ready at once, printing what it still waits for every few
 * seconds; past `deadline` it throws, naming each process that is not ready and why.
 */
export async function waitAllReady(
  probes: StartProbe[],
  deadline: number,
  print: (line: string) => void,
): Promise<void> {
  let lastReport = Date.now();
  for (;;) {
    const answers = await Promise.all(probes.map(async (p) => [p.name, await p.check()] as const));
    const waiting = answers.filter(([, reason]) => reason !== undefined);
    if (waiting.length === 0) return;
    const summary = waiting.map(([name, reason]) => `${name} (${reason})`).join(', ');
    if (Date.now() > deadline) {
      throw new Error(
        `the cluster did not become ready; still waiting for: ${summary}. Logs are in the run directory's logs/.`,
      );
    }
    if (Date.now() - lastReport >= REPORT_EVERY_MS) {
      print(`skillserve: waiting for ${summary}`);
      lastReport = Date.now();
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
