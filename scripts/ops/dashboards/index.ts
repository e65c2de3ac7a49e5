import { cacheAndLimits } from './cache.js';
import type { DashboardJson } from './common.js';
import { dependencies } from './dependencies.js';
import { overview } from './overview.js';
import { queue } from './queue.js';
import { skills } from './skills.js';

export type { DashboardJson } from './common.js';

/** Every dashboard: the file in grafana/dashboards/ → its builder. */
export const DASHBOARDS: Record<string, () => DashboardJson> = {
  'skillserve-overview.json': overview,
  'skillserve-skills.json': skills,
  'skillserve-queue.json': queue,
  'skillserve-cache.json': cacheAndLimits,
  'skillserve-dependencies.json': dependencies,
};
