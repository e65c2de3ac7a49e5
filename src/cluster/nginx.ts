import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const nginxTemplatePath = fileURLToPath(new URL('../../nginx/nginx.conf.template', import.meta.url));

export interface NginxParams {
  /** Absolute directory for nginx's pid, logs and temp files. */
  prefix: string;
  listen: { host: string; port: number };
  /** Where nginx serves stub_status for the exporter (NGINX_STATUS_PORT). */
  status: { host: string; port: number };
  gateways: { host: string; port: number }[];
  clientMaxBodyBytes: number;
  proxyReadTimeoutS: number;
  /** Requests per second per client IP, and the burst above it (NGINX_RATE_PER_IP, NGINX_BURST_PER_IP). */
  ratePerIp: number;
  burstPerIp: number;
  workers?: number;
}

/**
 * Fills the template's `${NAME}` placeholders. Any placeholder left unfilled is an error,
 * so a template change cannot silently ship a broken config.
 */
export function renderNginxConfig(params: NginxParams, template = readFileSync(nginxTemplatePath, 'utf8')): string {
  if (params.gateways.length === 0) throw new Error('nginx needs at least one gateway upstream');
  const values: Record<string, string> = {
    NGINX_WORKERS: String(params.workers ?? 1),
    PREFIX: params.prefix,
    LISTEN: `${params.listen.host}:${params.listen.port}`,
    STATUS_LISTEN: `${params.status.host}:${params.status.port}`,
    UPSTREAM_SERVERS: params.gateways
      .map((g) => `        server ${g.host}:${g.port} max_fails=1 fail_timeout=2s;`)
      .join('\n'),
    CLIENT_MAX_BODY_SIZE: `${Math.ceil(params.clientMaxBodyBytes / 1024)}k`,
    PROXY_READ_TIMEOUT: `${Math.ceil(params.proxyReadTimeoutS)}s`,
    RATE_PER_IP: String(params.ratePerIp),
    BURST_PER_IP: String(params.burstPerIp),
  };
  return template.replace(/\$\{([A-Z_]+)\}/g, (whole, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`nginx template: no value for ${whole}`);
    return value;
  });
}
