import { parser } from '@prometheus-io/lezer-promql';

/**
 * The API requests the SLIs count: everything the gateways serve except their own health routes
 * (which the supervisor and load balancers poll).
 */
export const API = 'route!~"/healthz|/readyz"';

/** `metric{matchers}`; matchers may be empty. */
export function sel(metric: string, ...matchers: string[]): string {
  const m = matchers.filter(Boolean);
  return m.length ? `${metric}{${m.join(', ')}}` : metric;
}

export function rate(metric: string, window: string, ...matchers: string[]): string {
  return `rate(${sel(metric, ...matchers)}[${window}])`;
}

const by = (labels: string) => (labels ? ` by (${labels})` : '');

export function sumRate(metric: string, window: string, labels = '', ...matchers: string[]): string {
  return `sum${by(labels)} (${rate(metric, window, ...matchers)})`;
}

/** `a / (b > 0)`: no NaN series while nothing is counted. */
export function ratio(numerator: string, denominator: string): string {
  return `${numerator} / (${denominator} > 0)`;
}

/** A quantile aggregated from the buckets of every replica (never an average of per-replica quantiles). */
export function quantile(q: number, histogram: string, window: string, labels = '', ...matchers: string[]): string {
  const grouping = labels ? `le, ${labels}` : 'le';
  return `histogram_quantile(${q}, ${sumRate(`${histogram}_bucket`, window, grouping, ...matchers)})`;
}

/** Mean of a histogram over the window. */
export function mean(histogram: string, window: string, labels = '', ...matchers: string[]): string {
  return ratio(
    sumRate(`${histogram}_sum`, window, labels, ...matchers),
    sumRate(`${histogram}_count`, window, labels, ...matchers),
  );
}

/** The metric names a PromQL expression selects, and whether it parses. */
export function metricNames(expr: string): { names: string[]; errors: number[] } {
  const names = new Set<string>();
  const errors: number[] = [];
  const cursor = parser.parse(expr).cursor();
  do {
    if (cursor.type.isError) errors.push(cursor.from);
    if (cursor.type.name === 'VectorSelector') {
      const first = cursor.node.firstChild;
      if (first?.type.name === 'Identifier') names.add(expr.slice(first.from, first.to));
    }
  } while (cursor.next());
  return { names: [...names].sort(), errors };
}
