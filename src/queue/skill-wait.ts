import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '../errors/index.js';
import type { RegistrySnapshot } from '../skills/registry.js';

/** Where the snapshot of live replicas comes from (a CachedRegistry). */
interface SkillDirectory {
  get(): Promise<RegistrySnapshot>;
}

/** How often a job waiting for its skill looks at the registry again (it is cached for REGISTRY_CACHE_MS). */
const POLL_MS = 100;

/** True when `skill` has a live replica that is not FAILED; false when `until` (epoch ms) passes first. */
export async function awaitReplica(registry: SkillDirectory, skill: string, until: number): Promise<boolean> {
  for (;;) {
    try {
      const { live } = await registry.get();
      if (live.some((r) => r.name === skill && r.state !== 'FAILED')) return true;
    } catch {
      // The registry cannot be read right now (Redis away): keep waiting, as for an absent skill.
    }
    const left = until - Date.now();
    if (left <= 0) return false;
    await sleep(Math.min(POLL_MS, left));
  }
}

/**
 * Runs `call` once the skill has a live replica, and again whenever it fails SKILL_UNAVAILABLE
 * (the replica went away mid-call, or the registry still listed a dead one), until `until`:
 * accepted work whose skill is momentarily absent — restarting, or not yet re-announced after
 * Redis came back — waits for it instead of failing. Inference has no side effects, so a call
 * that failed that way may run again. After `until` the last error stands. With
 * `waitOutBreaker` (accepted async work) BREAKER_OPEN is waited out the same way; a request
 * someone waits on gets it at once, to be answered from a stale entry or with a fast 503.
 */
export async function whileSkillAbsent<T>(
  registry: SkillDirectory,
  skill: string,
  until: number,
  call: () => Promise<T>,
  waitOutBreaker = false,
): Promise<T> {
  for (;;) {
    await awaitReplica(registry, skill, until);
    try {
      return await call();
    } catch (err) {
      const transient =
        err instanceof AppError &&
        (err.code === 'SKILL_UNAVAILABLE' || (waitOutBreaker && err.code === 'BREAKER_OPEN'));
      if (!transient || Date.now() + POLL_MS >= until) throw err;
      await sleep(POLL_MS);
    }
  }
}
