import { collectDefaultMetrics, Registry } from 'prom-client';

/** A Prometheus registry with the default process metrics, every series labelled with role and instance. */
export function createRegistry(opts: { role: string; instance: string }): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ role: opts.role, instance: opts.instance });
  collectDefaultMetrics({ register: registry });
  return registry;
}
