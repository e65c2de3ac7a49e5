import type { Registry } from 'prom-client';
import type { Authenticator } from '../auth/authenticator.js';
import type { Config } from '../config/index.js';
import type { EntityStore } from '../memory/entity-store.js';
import type { Logger } from '../observability/logger.js';
import type { InferJobData, InferJobResult } from '../queue/job.js';
import type { RegistrySnapshot } from '../skills/registry.js';

/** The narrow view of the job queue a gateway needs. */
export interface JobRunner {
  run(data: InferJobData, timeoutMs: number): Promise<InferJobResult>;
  pending(): number;
}

/** Where the gateway learns which skills exist and which are up. */
export interface SkillDirectory {
  get(): Promise<RegistrySnapshot>;
}

/** One dependency `/readyz` checks; resolves when healthy, throws a short reason otherwise. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

export interface GatewayDeps {
  config: Config;
  instance: string;
  logger: Logger;
  metrics: Registry;
  jobs: JobRunner;
  authenticator: Pick<Authenticator, 'authenticate'>;
  skills: SkillDirectory;
  /** Entity memory (triples per tenant). */
  memory: EntityStore;
  readiness: ReadinessCheck[];
  /** True once SIGTERM arrived: /readyz answers 503 so the balancer drains this instance. */
  isShuttingDown?: () => boolean;
}
