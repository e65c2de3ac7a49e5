import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { runProbe } from '../../src/cluster/probe.js';

/** One health check as a deployment file declares it, in a form this machine can run. */
export interface ProbeSpec {
  /** Where it was declared, e.g. `k8s gateway readinessProbe`. */
  origin: string;
  kind: 'http' | 'grpc' | 'tcp' | 'exec';
  /** The port as declared (before the test maps it to a free one). */
  port?: number;
  path?: string;
  service?: string;
  /** exec: the command as declared. */
  command?: string[];
}

/** The ports a role listens on, by the variable that sets each. */
export const PORT_VARS = ['METRICS_PORT', 'GATEWAY_PORT', 'SKILL_PORT', 'PUBLIC_PORT', 'TLS_PORT'] as const;

/** A container's probes, named ports resolved to its containerPorts. */
export function k8sProbes(container: any, owner: string): ProbeSpec[] {
  const portOf = (p: string | number) => {
    if (typeof p === 'number') return p;
    const found = (container.ports ?? []).find((x: any) => x.name === p);
    if (!found) throw new Error(`${owner}: a probe names port "${p}", which the container does not declare`);
    return found.containerPort as number;
  };
  return (['startupProbe', 'livenessProbe', 'readinessProbe'] as const).flatMap((which): ProbeSpec[] => {
    const p = container[which];
    if (!p) return [];
    const origin = `k8s ${owner} ${which}`;
    if (p.httpGet) return [{ origin, kind: 'http', port: portOf(p.httpGet.port), path: p.httpGet.path }];
    if (p.grpc) return [{ origin, kind: 'grpc', port: p.grpc.port, service: p.grpc.service ?? '' }];
    if (p.tcpSocket) return [{ origin, kind: 'tcp', port: portOf(p.tcpSocket.port) }];
    if (p.exec) return [{ origin, kind: 'exec', command: p.exec.command }];
    throw new Error(`${origin}: a probe of a kind this test does not know`);
  });
}

/** A compose service's health check, as an exec probe (or an HTTP one for a wget). */
export function composeProbe(service: any, name: string): ProbeSpec {
  const [form, ...command] = service.healthcheck.test as string[];
  const origin = `compose ${name} healthcheck`;
  if (form !== 'CMD') throw new Error(`${origin}: ${form} (this test runs CMD checks)`);
  if (command[0] === 'wget') {
    const url = new URL(command.find((a) => a.startsWith('http://'))!);
    return { origin, kind: 'http', port: Number(url.port), path: url.pathname };
  }
  return { origin, kind: 'exec', command };
}

/** What a probe runs against: where the role's ports went, its CLI and environment. */
export interface ProbeContext {
  ports: Map<number, number>;
  /** The CLI in the image layout, standing in for /app/dist/cli.js. */
  cli: string;
  env: NodeJS.ProcessEnv;
}

/** Runs one probe as Kubernetes or Docker would; resolves with whether it passed and why. */
export async function runProbeSpec(p: ProbeSpec, ctx: ProbeContext): Promise<{ ok: boolean; detail: string }> {
  if (p.kind === 'exec') {
    const [bin, ...args] = p.command!;
    if (bin !== 'node' || args[0] !== '/app/dist/cli.js')
      return { ok: false, detail: `cannot run ${p.command!.join(' ')}` };
    const res = spawnSync(process.execPath, [ctx.cli, ...args.slice(1)], {
      env: ctx.env,
      encoding: 'utf8',
      timeout: 10_000,
    });
    return { ok: res.status === 0, detail: `${res.stdout}${res.stderr}`.trim() };
  }
  const port = ctx.ports.get(p.port!);
  if (port === undefined) return { ok: false, detail: `port ${p.port} is none of the ports the role listens on` };
  if (p.kind === 'tcp') {
    return new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.setTimeout(2_000, () => socket.destroy(new Error('timeout')));
      socket.once('connect', () => {
        socket.destroy();
        resolve({ ok: true, detail: `tcp ${port}: open` });
      });
      socket.once('error', (err) => resolve({ ok: false, detail: `tcp ${port}: ${err.message}` }));
    });
  }
  const r = await runProbe({
    kind: p.kind,
    host: '127.0.0.1',
    port,
    path: p.kind === 'http' ? p.path! : (p.service ?? ''),
    timeoutMs: 3_000,
  });
  return { ok: r.healthy, detail: r.detail };
}

/** A role started from the layout's CLI; keeps the tail of its output for failure messages. */
export class RoleProcess {
  private output = '';
  readonly child: ChildProcess;

  constructor(
    readonly name: string,
    cli: string,
    args: string[],
    env: NodeJS.ProcessEnv,
  ) {
    this.child = spawn(process.execPath, [cli, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-4_000);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
  }

  get log(): string {
    return this.output;
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** SIGTERM, as an orchestrator stops it; SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (this.exited) return;
    const done = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await done;
    clearTimeout(timer);
  }
}

/** Polls every probe until all pass (or the role dies, or time runs out); returns the last results. */
export async function waitProbes(
  probes: ProbeSpec[],
  ctx: ProbeContext,
  opts: { alive: () => boolean; timeoutMs?: number },
): Promise<{ probe: ProbeSpec; ok: boolean; detail: string }[]> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    const results = await Promise.all(probes.map(async (probe) => ({ probe, ...(await runProbeSpec(probe, ctx)) })));
    if (results.every((r) => r.ok) || !opts.alive() || Date.now() > deadline) return results;
    await new Promise((r) => setTimeout(r, 500));
  }
}
