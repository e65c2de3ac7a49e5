import { METRICS, type MetricSpec, specOf } from '../../src/observability/catalogue.js';
import { DASHBOARDS, type DashboardJson } from './dashboards/index.js';
import { metricNames } from './promql.js';
import { alertRules, recordRules } from './rules.js';

export interface Expression {
  /** e.g. `alert HighErrorRate`, `dashboard skillserve-overview: Error rate`. */
  where: string;
  expr: string;
}

/**
 * Grafana's variables replaced by values Prometheus accepts, so a panel's query can be parsed and
 * run as it would be with every filter set to "All".
 */
export function substituteVariables(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '1m')
    .replaceAll('$__range', '1h')
    .replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, '.*');
}

/** Every PromQL expression of the rules and the dashboards (panels and variables), variables substituted. */
export function expressions(): Expression[] {
  const out: Expression[] = [];
  for (const r of alertRules()) out.push({ where: `alert ${r.alert}`, expr: r.expr });
  for (const r of recordRules()) out.push({ where: `record ${r.record}`, expr: r.expr });
  for (const build of Object.values(DASHBOARDS)) out.push(...dashboardExpressions(build()));
  return out;
}

/** The queries of one dashboard's panels (rows included) and query variables. */
export function dashboardExpressions(d: DashboardJson): Expression[] {
  const out: Expression[] = [];
  const panels = (d.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
  for (const p of panels)
    for (const t of p.targets ?? [])
      if (t.expr) out.push({ where: `dashboard ${d.uid}: ${p.title}`, expr: substituteVariables(t.expr) });
  for (const v of d.templating?.list ?? [])
    if (v.type === 'query' && typeof v.query === 'string')
      out.push({
        where: `dashboard ${d.uid}: variable ${v.name}`,
        expr: substituteVariables(labelValuesSelector(v.query)),
      });
  return out;
}

/** `label_values(metric{…}, label)` → `metric{…}` (the selector Prometheus is asked about). */
function labelValuesSelector(query: string): string {
  const m = /^label_values\((.*),\s*\w+\)$/.exec(query.trim());
  return m ? m[1]! : query;
}

/** Recording rules' outputs: names the rules define, not the code. */
export function recordedNames(): Set<string> {
  return new Set(recordRules().map((r) => r.record));
}

/** Catalogue metric name → where the rules and dashboards use it; other names (exporters, `up`) under their own. */
export function usage(): Map<string, string[]> {
  const byName = new Map<string, string[]>();
  for (const { where, expr } of expressions()) {
    for (const series of metricNames(expr).names) {
      const family = specOf(series)?.name ?? series;
      const list = byName.get(family) ?? [];
      if (!list.includes(where)) list.push(where);
      byName.set(family, list);
    }
  }
  return byName;
}

/** Problems: expressions that do not parse, and `skillserve_` names that are not in the catalogue. */
export function uncatalogued(): string[] {
  const problems: string[] = [];
  const recorded = recordedNames();
  for (const { where, expr } of expressions()) {
    const { names, errors } = metricNames(expr);
    if (errors.length) problems.push(`${where}: the expression does not parse: ${expr}`);
    for (const n of names)
      if (n.startsWith('skillserve') && !recorded.has(n) && !specOf(n))
        problems.push(`${where}: ${n} is not in src/observability/catalogue.ts`);
  }
  return problems;
}

/** Catalogue entries that no rule or dashboard uses (reported in METRICS.md, not an error). */
export function unused(): MetricSpec[] {
  const used = usage();
  return Object.values(METRICS).filter((s: MetricSpec) => !used.has(s.name));
}
