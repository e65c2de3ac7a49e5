import { SkillClient } from '../skills/client.js';
import { hostPort } from '../skills/advertise.js';
import type { ManagedProcess } from './managed-process.js';

const PROBE_TIMEOUT_MS = 2_000;

/**
 * Restarts processes that are alive but stuck, which the exit-based restart never sees: a gateway
 * whose `/healthz` (admin port) stops answering, a skill whose gRPC health is NOT_SERVING or
 * unanswered — for longer than `stuckAfterMs`. A process is killed (SIGKILL) and the
 * {@link ManagedProcess} restarts it as one that died.
 */
export class HealthMonitor {
  private readonly healthyAt = new Map<ManagedProcess, number>();
  private running = false;

  constructor(
    private readonly opts: {
      host: string;
      stuckAfterMs: number;
      log: (line: string) => void;
      all: () => readonly ManagedProcess[];
    },
  ) {}

  /** One round of probes; overlapping rounds are skipped. */
  async tick(now = Date.now()): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const targets = this.opts.all().filter((p) => p.pid && (isGateway(p) || isSkill(p)));
      for (const p of this.healthyAt.keys()) if (!targets.includes(p)) this.healthyAt.delete(p);
      await Promise.all(targets.map((p) => this.check(p, now)));
    } finally {
      this.running = false;
    }
  }

  private async check(p: ManagedProcess, now: number): Promise<void> {
    // A process not probed before is judged from now, not from its start: the first probe may come
    // long after the start (the monitor begins once the cluster is up), and one unanswered probe
    // then must not count as the whole time since the start.
    if (!this.healthyAt.has(p)) this.healthyAt.set(p, now);
    const since = Math.max(this.healthyAt.get(p)!, p.startedAt);
    const verdict = await this.probe(p);
    if (verdict === 'healthy') {
      this.healthyAt.set(p, Date.now());
      return;
    }
    if (verdict === 'unknown' || !p.pid || now - since <= this.opts.stuckAfterMs) return;
    this.opts.log(
      `${p.spec.name}: stuck (${verdict}) for ${Math.round((now - since) / 1000)} s; killing it to restart (pid ${p.pid})`,
    );
    this.healthyAt.delete(p);
    p.kill();
  }

  private async probe(p: ManagedProcess): Promise<'healthy' | 'unknown' | string> {
    if (isGateway(p)) {
      if (!p.adminPort) return 'unknown';
      try {
        const res = await fetch(`http://${hostPort(this.opts.host, p.adminPort)}/healthz`, {
          signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
        });
        await res.body?.cancel();
        return res.ok ? 'healthy' : `/healthz answered ${res.status}`;
      } catch {
        return '/healthz not answering';
      }
    }
    if (!p.grpcPort) return 'unknown';
    const client = new SkillClient('health-monitor', hostPort(this.opts.host, p.grpcPort));
    try {
      const status = await client.check(PROBE_TIMEOUT_MS);
      return status === 'SERVING' ? 'healthy' : `gRPC health ${status}`;
    } catch {
      return 'gRPC health not answering';
    } finally {
      client.close();
    }
  }
}

const isGateway = (p: ManagedProcess) => p.spec.name.startsWith('gateway-');
const isSkill = (p: ManagedProcess) => p.spec.name.startsWith('skill-');
