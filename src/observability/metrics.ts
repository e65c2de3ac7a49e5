import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { buildVersion } from '../lib/version.js';
import { LABELS, type LabelSpec, METRICS, type MetricSpec, OTHER } from './catalogue.js';
import { type ReadinessCheck, runReadiness } from './readiness.js';

/** The exported label names of a catalogue spec. */
type LabelsOf<S extends MetricSpec> = Extract<keyof S['labels'], string>;

/**
 * A Prometheus registry with the default process metrics (CPU, memory, event loop) and
 * `skillserve_build_info`, every series labelled with the process's role. The instance is the
 * scrape target's label, which Prometheus sets (prometheus/prometheus.yml), so the process does
 * not set one: a label of its own would clash with it.
 */
export function createRegistry(opts: { role: string }): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ role: opts.role });
  collectDefaultMetrics({ register: registry });
  gauge(registry, METRICS.buildInfo).set({ version: buildVersion() }, 1);
  return registry;
}

function base<S extends MetricSpec>(registry: Registry, spec: S) {
  return {
    name: spec.name,
    help: spec.help,
    labelNames: Object.keys(spec.labels) as LabelsOf<S>[],
    registers: [registry],
  };
}

/**
 * A counter defined by its catalogue entry. When every label is enumerated, each combination
 * starts at 0: the series exist before the first event, so rates and alerts see it happen.
 */
export function counter<S extends MetricSpec & { type: 'counter' }>(registry: Registry, spec: S): Counter<LabelsOf<S>> {
  const c = new Counter(base(registry, spec));
  let combos: Record<string, string>[] = [{}];
  for (const [label, key] of Object.entries(spec.labels)) {
    const values = (LABELS[key] as LabelSpec).values;
    if (!values) return c;
    combos = combos.flatMap((combo) => values.map((v) => ({ ...combo, [label]: v })));
  }
  for (const combo of combos) c.inc(combo as Partial<Record<LabelsOf<S>, string>>, 0);
  return c;
}

/** A gauge defined by its catalogue entry; `collect` runs at every scrape (it may be async). */
export function gauge<S extends MetricSpec & { type: 'gauge' }>(
  registry: Registry,
  spec: S,
  collect?: (this: Gauge<LabelsOf<S>>) => void | Promise<void>,
): Gauge<LabelsOf<S>> {
  return new Gauge({ ...base(registry, spec), ...(collect ? { collect } : {}) });
}

/** A histogram defined by its catalogue entry, with the catalogue's buckets. */
export function histogram<S extends MetricSpec & { type: 'histogram'; buckets: readonly number[] }>(
  registry: Registry,
  spec: S,
): Histogram<LabelsOf<S>> {
  return new Histogram({ ...base(registry, spec), buckets: [...spec.buckets] });
}

/**
 * `value` when it is one of the label's known values (or of `known`), else `other`: what keeps a
 * label bounded when its value comes from outside (an HTTP method, a model name in a request).
 */
export function bounded(label: keyof typeof LABELS, value: string, known?: ReadonlySet<string>): string {
  const spec: LabelSpec = LABELS[label];
  if (known) return known.has(value) ? value : OTHER;
  return spec.values?.includes(value) ? value : OTHER;
}

/** `2xx` for 200, and so on. */
export function statusClass(status: number): string {
  return `${Math.min(5, Math.max(1, Math.floor(status / 100)))}xx`;
}

const READINESS_VALUE = { ready: 2, degraded: 1, not_ready: 0 } as const;

/**
 * `skillserve_readiness_state` and `skillserve_readiness_check_ok`, computed from the process's
 * readiness checks at scrape time (each bounded in time, as for `/readyz`).
 */
export function readinessMetrics(registry: Registry, checks: ReadinessCheck[], shuttingDown: () => boolean): void {
  let last: Promise<Awaited<ReturnType<typeof runReadiness>>> | undefined;
  // Both gauges are collected in one scrape: they share one run of the checks.
  const report = () => {
    last ??= runReadiness(checks, shuttingDown()).finally(() => setImmediate(() => (last = undefined)));
    return last;
  };
  gauge(registry, METRICS.readinessState, async function collect() {
    this.set(READINESS_VALUE[(await report()).status]);
  });
  gauge(registry, METRICS.readinessCheck, async function collect() {
    this.reset();
    for (const [check, result] of Object.entries((await report()).checks)) this.set({ check }, result === 'ok' ? 1 : 0);
  });
}
