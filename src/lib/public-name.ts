import { createHash } from 'node:crypto';

/**
 * The name a process shows on the public port (`X-Served-By`, the skills listing): a short hash
 * of its instance id, so outsiders can tell instances apart (and a support request can quote it)
 * without learning a host name, an address or a port. Operators map it back with the admin port's
 * `/healthz` or the logs, which carry both.
 */
export function publicName(instance: string, kind: string): string {
  return `${kind}-${createHash('sha256').update(instance).digest('hex').slice(0, 10)}`;
}
