/**
 * The Prometheus scrape jobs (prometheus/prometheus.yml). The supervisor writes each job's targets
 * to `targets/<job>.json` (file_sd); the alert rules name the jobs in `up{job=…}`.
 */
export const SCRAPE_JOBS = {
  gateway: 'skillserve-gateway',
  dispatcher: 'skillserve-dispatcher',
  skill: 'skillserve-skill',
  supervisor: 'skillserve-supervisor',
  nginx: 'nginx',
  redis: 'redis',
  postgres: 'postgres',
  prometheus: 'prometheus',
  alertmanager: 'alertmanager',
} as const;

export type ScrapeJob = (typeof SCRAPE_JOBS)[keyof typeof SCRAPE_JOBS];

/** The jobs of skillserve's own processes: every one must have a live target. */
export const OWN_JOBS: readonly ScrapeJob[] = [SCRAPE_JOBS.gateway, SCRAPE_JOBS.dispatcher, SCRAPE_JOBS.skill];
