/** The local autoscaling policy; the HPA's `behavior` in deploy/k8s says the same thing. */
export interface ScalePolicy {
  upCpuPercent: number;
  upWindowMs: number;
  downCpuPercent: number;
  downWindowMs: number;
  cooldownMs: number;
}

export interface Bounds {
  min: number;
  max: number;
}

export type Direction = 'up' | 'down';
/** Why a count changed (a bounded label). */
export type ScaleReason = 'cpu_high' | 'cpu_low' | 'manual';

export interface Decision {
  /** `hold` changes nothing; the reason says why. */
  action: Direction | 'hold';
  reason: ScaleReason | 'within_band' | 'warming' | 'cooldown' | 'at_bound';
  /** The count the role should have after this decision. */
  target: number;
  /** One line for the log and `skillserve status`. */
  detail: string;
  at: number;
}

interface RoleTrack {
  /** Since when the average has been above the up threshold (below the down one), if it is. */
  highSince?: number;
  lowSince?: number;
  lastStepAt?: number;
}

const pct = (n: number) => `${n.toFixed(0)} %`;
const secs = (ms: number) => `${Math.round(ms / 1000)} s`;

/**
 * Decides, one role at a time, whether to add or remove one replica: up after the role's average
 * CPU stayed above `upCpuPercent` for `upWindowMs`, down after it stayed below `downCpuPercent`
 * for `downWindowMs`, one step at a time, never outside the bounds, and never within `cooldownMs`
 * of the role's previous step (a manual `scale` counts as a step).
 */
export class Autoscaler {
  private readonly roles = new Map<string, RoleTrack>();

  constructor(private readonly policy: ScalePolicy) {}

  private track(role: string): RoleTrack {
    let t = this.roles.get(role);
    if (!t) this.roles.set(role, (t = {}));
    return t;
  }

  /** A count was set by hand: the windows start again from here. */
  stepped(role: string, now: number): void {
    this.roles.set(role, { lastStepAt: now });
  }

  decide(role: string, avgCpuPercent: number, replicas: number, bounds: Bounds, now: number): Decision {
    const p = this.policy;
    const t = this.track(role);
    const hold = (reason: Decision['reason'], detail: string): Decision => ({
      action: 'hold',
      reason,
      target: replicas,
      detail: `cpu ${pct(avgCpuPercent)}: ${detail}`,
      at: now,
    });
    if (avgCpuPercent > p.upCpuPercent) {
      t.lowSince = undefined;
      t.highSince ??= now;
    } else if (avgCpuPercent < p.downCpuPercent) {
      t.highSince = undefined;
      t.lowSince ??= now;
    } else {
      t.highSince = t.lowSince = undefined;
      return hold('within_band', `within ${pct(p.downCpuPercent)}–${pct(p.upCpuPercent)}`);
    }
    const high = t.highSince !== undefined;
    const since = (high ? t.highSince : t.lowSince)!;
    const window = high ? p.upWindowMs : p.downWindowMs;
    const threshold = high ? `above ${pct(p.upCpuPercent)}` : `below ${pct(p.downCpuPercent)}`;
    if (high ? replicas >= bounds.max : replicas <= bounds.min)
      return hold('at_bound', `${threshold}, but ${replicas} is the ${high ? 'maximum' : 'minimum'}`);
    if (now - since < window) return hold('warming', `${threshold} for ${secs(now - since)} of ${secs(window)}`);
    if (t.lastStepAt !== undefined && now - t.lastStepAt < p.cooldownMs)
      return hold('cooldown', `${threshold}, cooling down (${secs(p.cooldownMs - (now - t.lastStepAt))} left)`);
    this.roles.set(role, { lastStepAt: now });
    return {
      action: high ? 'up' : 'down',
      reason: high ? 'cpu_high' : 'cpu_low',
      target: replicas + (high ? 1 : -1),
      detail: `cpu ${pct(avgCpuPercent)} ${threshold} for ${secs(now - since)}: ${replicas} → ${replicas + (high ? 1 : -1)}`,
      at: now,
    };
  }
}
