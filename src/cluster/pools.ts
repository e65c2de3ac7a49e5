import { writeFileSync } from 'node:fs';
import type { Config } from '../config/index.js';
import { hostPort } from '../skills/advertise.js';
import { ManagedProcess, type ProcessSpec } from './managed-process.js';
import { type NginxParams, renderNginxConfig } from './nginx.js';
import { checkPortFree } from './preflight.js';
import { childPids } from './proc-stats.js';
import type { Pool } from './scaler.js';
import { until, waitReady } from './wait-ready.js';

export interface PoolContext {
  config: Config;
  /** A node role's spec (the supervisor's `role`). */
  spec: (name: string, role: string, env: Record<string, string>) => ProcessSpec;
  onEvent: (name: string, event: string) => void;
  /** Every process of the cluster; pools add to it and remove from it. */
  processes: ManagedProcess[];
  /** Rewrites the state file and Prometheus's targets. */
  record: () => void;
  readyTimeoutMs: number;
  log: (line: string) => void;
}

const stopTimeout = (config: Config) => config.SHUTDOWN_TIMEOUT_MS + 2_000;

function launch(ctx: PoolContext, spec: ProcessSpec): ManagedProcess {
  const p = new ManagedProcess(spec, ctx.onEvent);
  ctx.processes.push(p);
  p.start();
  ctx.record();
  return p;
}

async function retire(ctx: PoolContext, p: ManagedProcess): Promise<void> {
  await p.stop(stopTimeout(ctx.config));
  const i = ctx.processes.indexOf(p);
  if (i >= 0) ctx.processes.splice(i, 1);
  ctx.record();
}

/** The lowest index ≥ 1 no member's name uses: `gateway-3`, `skill-nlp-2`. */
function freeIndex(members: ManagedProcess[], name: (i: number) => string): number {
  const taken = new Set(members.map((m) => m.spec.name));
  let i = 1;
  while (taken.has(name(i))) i++;
  return i;
}

/**
 * nginx in front of the gateway pool: the config is rewritten with the pool's ports and nginx
 * reloaded (SIGHUP: new workers take new connections, old ones finish what they carry). The
 * reload counts as done once a worker of the new generation runs.
 */
export class NginxUpstreams {
  process?: ManagedProcess;

  constructor(
    private readonly confFile: string,
    private readonly params: NginxParams,
  ) {}

  write(ports: number[]): void {
    writeFileSync(
      this.confFile,
      renderNginxConfig({
        ...this.params,
        gateways: ports.map((port) => ({ host: this.params.gateways[0]!.host, port })),
      }),
    );
  }

  async reload(ports: number[]): Promise<void> {
    this.write(ports);
    const pid = this.process?.pid;
    if (!pid) return; // not started yet (or restarting): it reads the new file when it starts
    const before = new Set(childPids(pid));
    process.kill(pid, 'SIGHUP');
    await until(() => childPids(pid).some((c) => !before.has(c)), 10_000, 'nginx did not start new workers');
  }
}

/**
 * Gateways: a new one is added to nginx only once its /readyz answers ready; one being removed
 * leaves nginx first, then gets SIGTERM and finishes its in-flight requests (bounded by
 * SHUTDOWN_TIMEOUT_MS).
 */
export function gatewayPool(ctx: PoolContext, nginx: NginxUpstreams): Pool & { start(n: number): void } {
  const { config } = ctx;
  const ports = new Map<ManagedProcess, number>();
  const members: ManagedProcess[] = [];
  const name = (i: number) => `gateway-${i}`;
  const portsNow = () => members.map((m) => ports.get(m)!);
  const add = (i: number) => {
    const port = config.GATEWAY_BASE_PORT + i - 1;
    const p = launch(ctx, ctx.spec(name(i), 'gateway', { GATEWAY_PORT: String(port) }));
    ports.set(p, port);
    return p;
  };
  return {
    key: 'gateway',
    role: 'gateway',
    bounds: { min: config.GATEWAY_MIN, max: config.GATEWAY_MAX },
    autoscale: true,
    members,
    async grow() {
      const i = freeIndex(members, name);
      await checkPortFree(config.HOST, config.GATEWAY_BASE_PORT + i - 1, 'a new gateway');
      const p = add(i);
      try {
        await waitReady(`http://${hostPort(config.HOST, ports.get(p)!)}/readyz`, Date.now() + ctx.readyTimeoutMs);
      } catch (err) {
        await retire(ctx, p);
        throw err;
      }
      members.push(p);
      await nginx.reload(portsNow());
      ctx.log(`gateway ${p.spec.name} (port ${ports.get(p)}) is in nginx's upstream`);
    },
    async shrink() {
      const p = members.pop();
      if (!p) return;
      await nginx.reload(portsNow());
      ctx.log(`gateway ${p.spec.name} is out of nginx's upstream; draining it`);
      await retire(ctx, p);
    },
    /** The first gateways, started with the cluster (before nginx). */
    start: (n: number) => {
      for (let k = 1; k <= n; k++) members.push(add(k));
    },
  };
}

/**
 * Replicas of one skill, or dispatchers: a new one counts once its admin /readyz is ready (skills
 * then announce themselves in the registry); one being removed gets SIGTERM, withdraws from the
 * registry and finishes the calls it has (skills), or its jobs (dispatchers).
 */
export function rolePool(
  ctx: PoolContext,
  what: { role: 'skill'; skill: string } | { role: 'dispatcher' },
): Pool & { start(n: number): void } {
  const { config } = ctx;
  const members: ManagedProcess[] = [];
  const skill = what.role === 'skill' ? what.skill : undefined;
  // The first replica keeps the name it always had: skill-nlp; then skill-nlp-2, …
  const name = (i: number) => (skill ? (i === 1 ? `skill-${skill}` : `skill-${skill}-${i}`) : `dispatcher-${i}`);
  const add = (i: number) =>
    launch(ctx, ctx.spec(name(i), what.role, skill ? { SKILL_NAME: skill, SKILL_PORT: '0' } : {}));
  const autoscale = Boolean(skill);
  return {
    key: skill ? `skill:${skill}` : 'dispatcher',
    role: what.role,
    ...(skill ? { skill } : {}),
    bounds: skill
      ? { min: config.SKILL_REPLICAS_MIN, max: config.SKILL_REPLICAS_MAX }
      : { min: 1, max: Math.max(config.DISPATCHER_COUNT, 10) },
    autoscale,
    members,
    async grow() {
      const p = add(freeIndex(members, name));
      try {
        await until(() => p.adminPort !== undefined, ctx.readyTimeoutMs, `${p.spec.name} reported no admin port`);
        await waitReady(`http://${hostPort(config.HOST, p.adminPort!)}/readyz`, Date.now() + ctx.readyTimeoutMs);
      } catch (err) {
        await retire(ctx, p);
        throw err;
      }
      members.push(p);
    },
    async shrink() {
      const p = members.pop();
      if (p) await retire(ctx, p);
    },
    start: (n: number) => {
      for (let k = 1; k <= n; k++) members.push(add(k));
    },
  };
}
