/**
 * Node's socket-level failure codes: the peer is down, unreachable, or cut the connection. Any
 * driver's error carrying one means the dependency cannot serve right now (a 503), not that the
 * request was wrong.
 */
export const socketFailureCodes: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
