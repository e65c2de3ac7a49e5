/**
 * The numbers on-call is held to, in one place: the alert rules and the dashboards (threshold
 * lines, colours) are both generated from these, so a threshold cannot differ between them.
 * The targets come from the product brief: p95 < 200 ms, alerts at p95 > 500 ms for 5 m, error
 * rate > 5 % for 2 m, an instance down for 1 m, cache hit rate < 50 %, 99.9 % availability.
 */
export const OBJECTIVES = {
  /** The brief's latency target (the line on the latency panel). */
  latencyTargetS: 0.2,
  /** p95 above this for `latencyFor` alerts. */
  latencyAlertS: 0.5,
  latencyFor: '5m',
  /** Share of 5xx answers above this for `errorFor` alerts. */
  errorRatio: 0.05,
  errorFor: '2m',
  instanceDownFor: '1m',
  /** Hit rate below this alerts, while at least `cacheMinTrafficPerS` cacheable requests arrive. */
  cacheHitMin: 0.5,
  cacheMinTrafficPerS: 0.2,
  cacheFor: '15m',
  /** A job at the head of a queue waiting longer than this alerts. */
  queueOldestS: 30,
  /** A backlog above this that kept growing for `queueGrowFor` alerts. */
  queueGrowMin: 100,
  queueGrowFor: '15m',
} as const;

/**
 * The availability SLO: 99.9 % of API requests succeed (no 5xx, which includes requests the
 * cluster shed with 503 OVERLOADED) within `latencyS` seconds. `latencyS` must be a bucket
 * boundary of skillserve_http_request_duration_seconds (a test checks it).
 */
export const SLO = {
  target: 0.999,
  latencyS: 1,
  /**
   * Multi-window, multi-burn-rate alerts (Google SRE workbook, "Alerting on SLOs", table 5-8):
   * a burn rate of 14.4 over 1 h spends 2 % of a 30-day budget; each alert also needs the short
   * window to burn, so it stops soon after the burning stops.
   */
  windows: [
    { long: '1h', short: '5m', factor: 14.4, for: '2m', severity: 'critical' },
    { long: '6h', short: '30m', factor: 6, for: '15m', severity: 'critical' },
    { long: '1d', short: '2h', factor: 3, for: '1h', severity: 'warning' },
    { long: '3d', short: '6h', factor: 1, for: '3h', severity: 'warning' },
  ],
} as const;
