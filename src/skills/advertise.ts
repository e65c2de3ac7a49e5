import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import type { Config } from '../config/index.js';

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]']);

/**
 * The host a skill announces in the registry: SKILL_ADVERTISE_HOST when set; else HOST, unless
 * HOST is a wildcard (containers bind 0.0.0.0), which no other process can dial — then this
 * machine's first non-internal IPv4 address, which in a container or pod is its own and so
 * differs between replicas.
 */
export function advertisedHost(
  config: Pick<Config, 'HOST' | 'SKILL_ADVERTISE_HOST'>,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces(),
): string {
  if (config.SKILL_ADVERTISE_HOST) return config.SKILL_ADVERTISE_HOST;
  if (!WILDCARDS.has(config.HOST)) return config.HOST;
  const address = Object.values(interfaces)
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
  if (!address) {
    throw new Error(
      `HOST is ${config.HOST} and this machine has no non-internal IPv4 address to announce: ` +
        'set SKILL_ADVERTISE_HOST to the address other processes reach this skill at',
    );
  }
  return address;
}

/** `host:port`, with an IPv6 literal in brackets as gRPC targets need it. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}
