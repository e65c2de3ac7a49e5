import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/index.js';

export const nginxTemplatePath = fileURLToPath(new URL('../../nginx/nginx.conf.template', import.meta.url));

/** An nginx version as [major, minor, patch]. */
export type NginxVersion = readonly [number, number, number];

export interface NginxTls {
  /** Where HTTPS listens (host and port). */
  listen: { host: string; port: number };
  /** PEM certificate (chain) and key, as nginx sees them. */
  certFile: string;
  keyFile: string;
}

export interface NginxParams {
  /** Absolute directory for nginx's pid and temp files (and its error log unless `errorLog` says otherwise). */
  prefix: string;
  /** Plain HTTP. With `tls`, keep it on a loopback address: it is for local tools and health checks. */
  listen: { host: string; port: number };
  /** Where nginx serves stub_status for the exporter (NGINX_STATUS_PORT). */
  status: { host: string; port: number };
  /** Upstream gateways; with `resolver`, host names are looked up again and again while nginx runs. */
  gateways: { host: string; port: number }[];
  clientMaxBodyBytes: number;
  proxyReadTimeoutS: number;
  /** Requests per second per client IP, and the burst above it (NGINX_RATE_PER_IP, NGINX_BURST_PER_IP). */
  ratePerIp: number;
  burstPerIp: number;
  /** Connections with a request in progress per client IP (NGINX_CONN_PER_IP; default 256). */
  connPerIp?: number;
  workers?: number;
  /** A file, or `stderr` (containers); default `<prefix>/logs/error.log`. */
  errorLog?: string;
  tls?: NginxTls;
  /** DNS server for re-resolving gateway names (NGINX_RESOLVER); needs nginx 1.27.3+. */
  resolver?: string;
  /** The nginx that will run this config; directives follow it. Default: a current one (1.28). */
  version?: NginxVersion;
}

/** The nginx the container images pin; the default for a config rendered for a container. */
export const CURRENT_NGINX: NginxVersion = [1, 28, 0];

const atLeast = (v: NginxVersion, min: NginxVersion) => {
  for (let i = 0; i < 3; i++) if (v[i] !== min[i]) return v[i]! > min[i]!;
  return true;
};

/** `"1.22.1"` (or `nginx version: nginx/1.22.1`) → [1, 22, 1]. */
export function parseNginxVersion(text: string): NginxVersion {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (!m) throw new Error(`not an nginx version: "${text}"`);
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

/** Mozilla's "intermediate" TLS settings: TLS 1.2 and 1.3, forward-secret AEAD ciphers only. */
function tlsDirectives(tls: NginxTls, version: NginxVersion): string[] {
  // `http2 on;` replaced the listen flag in 1.25.1; the flag still works there, with a warning.
  const modern = atLeast(version, [1, 25, 1]);
  return [
    `listen ${tls.listen.host}:${tls.listen.port} ssl${modern ? '' : ' http2'};`,
    ...(modern ? ['http2 on;'] : []),
    `ssl_certificate ${tls.certFile};`,
    `ssl_certificate_key ${tls.keyFile};`,
    'ssl_protocols TLSv1.2 TLSv1.3;',
    'ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;',
    'ssl_prefer_server_ciphers off;',
    'ssl_session_cache shared:skillserve_tls:10m;',
    'ssl_session_timeout 1d;',
    'ssl_session_tickets off;',
    // Browsers ignore it over plain HTTP, so answering it on the loopback listener too is harmless.
    'add_header Strict-Transport-Security "max-age=63072000" always;',
  ];
}

function upstreamServers(params: NginxParams, version: NginxVersion): string[] {
  const servers = params.gateways.map(
    (g) => `server ${g.host}:${g.port} max_fails=1 fail_timeout=2s${params.resolver ? ' resolve' : ''};`,
  );
  if (!params.resolver) return servers;
  if (!atLeast(version, [1, 27, 3])) {
    throw new Error(
      `NGINX_RESOLVER needs nginx 1.27.3 or later (re-resolving upstream names); this nginx is ${version.join('.')}`,
    );
  }
  // The shared zone holds the addresses the resolver finds; `valid` is how long an answer is trusted.
  return [`zone skillserve_gateways 1m;`, `resolver ${params.resolver} valid=5s ipv6=off;`, ...servers];
}

/**
 * Fills the template's `${NAME}` placeholders. Any placeholder left unfilled is an error,
 * so a template change cannot silently ship a broken config.
 */
export function renderNginxConfig(params: NginxParams, template = readFileSync(nginxTemplatePath, 'utf8')): string {
  if (params.gateways.length === 0) throw new Error('nginx needs at least one gateway upstream');
  const version = params.version ?? CURRENT_NGINX;
  const indent = (lines: string[]) => lines.map((l) => `        ${l}`).join('\n');
  const values: Record<string, string> = {
    NGINX_WORKERS: String(params.workers ?? 1),
    PREFIX: params.prefix,
    ERROR_LOG: params.errorLog ?? `${params.prefix}/logs/error.log`,
    LISTEN: `${params.listen.host}:${params.listen.port}`,
    STATUS_LISTEN: `${params.status.host}:${params.status.port}`,
    TLS: params.tls ? indent(tlsDirectives(params.tls, version)) : '',
    UPSTREAM_SERVERS: indent(upstreamServers(params, version)),
    CLIENT_MAX_BODY_SIZE: `${Math.ceil(params.clientMaxBodyBytes / 1024)}k`,
    PROXY_READ_TIMEOUT: `${Math.ceil(params.proxyReadTimeoutS)}s`,
    RATE_PER_IP: String(params.ratePerIp),
    BURST_PER_IP: String(params.burstPerIp),
    CONN_PER_IP: String(params.connPerIp ?? 256),
  };
  return template.replace(/\$\{([A-Z_]+)\}/g, (whole, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`nginx template: no value for ${whole}`);
    return value;
  });
}

/** `host:port` → parts; a bare IPv6 literal is not supported here (give it in brackets). */
export function parseHostPort(entry: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(entry);
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535) throw new Error(`NGINX_UPSTREAMS: "${entry}" is not host:port`);
  return { host: m[1]!, port };
}

const LOOPBACK = '127.0.0.1';

/**
 * The one place configuration becomes nginx parameters, for `up` and for `skillserve nginx-config`
 * (containers). With TLS on, HTTPS listens on HOST:TLS_PORT and plain HTTP stays on
 * 127.0.0.1:PUBLIC_PORT: a client that sends its API key over plain HTTP to a public address
 * must find nothing listening, rather than a redirect that comes after the key has crossed the
 * network in clear.
 */
export function nginxParamsFromConfig(
  config: Config,
  where: {
    prefix: string;
    errorLog?: string;
    version?: NginxVersion;
    /** Certificate and key to use when the configuration names none (`up` makes a self-signed pair). */
    tlsFiles?: { certFile: string; keyFile: string };
  },
): NginxParams {
  const gateways =
    config.NGINX_UPSTREAMS.length > 0
      ? config.NGINX_UPSTREAMS.map(parseHostPort)
      : Array.from({ length: config.GATEWAY_COUNT }, (_, i) => ({
          host: config.HOST,
          port: config.GATEWAY_BASE_PORT + i,
        }));
  let tls: NginxTls | undefined;
  if (config.TLS === 'on') {
    const files =
      config.TLS_CERT_FILE && config.TLS_KEY_FILE
        ? { certFile: config.TLS_CERT_FILE, keyFile: config.TLS_KEY_FILE }
        : where.tlsFiles;
    if (!files) throw new Error('TLS=on needs TLS_CERT_FILE and TLS_KEY_FILE (PEM files nginx can read)');
    tls = { listen: { host: config.HOST, port: config.TLS_PORT }, ...files };
  }
  return {
    prefix: where.prefix,
    ...(where.errorLog ? { errorLog: where.errorLog } : { errorLog: join(where.prefix, 'logs', 'error.log') }),
    listen: { host: tls ? LOOPBACK : config.HOST, port: config.PUBLIC_PORT },
    status: { host: config.HOST, port: config.NGINX_STATUS_PORT },
    gateways,
    ...(tls ? { tls } : {}),
    ...(config.NGINX_RESOLVER ? { resolver: config.NGINX_RESOLVER } : {}),
    ...(where.version ? { version: where.version } : {}),
    clientMaxBodyBytes: Math.max(config.BODY_LIMIT_BYTES * 4, config.MEMORY_BODY_LIMIT_BYTES * 2, 1024 * 1024),
    proxyReadTimeoutS: config.REQUEST_TIMEOUT_MS / 1000 + 5,
    ratePerIp: config.NGINX_RATE_PER_IP,
    burstPerIp: config.NGINX_BURST_PER_IP,
    connPerIp: config.NGINX_CONN_PER_IP,
  };
}
