import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Config } from '../config/index.js';
import { UsageError } from '../lib/usage-error.js';
import { CURRENT_NGINX, nginxParamsFromConfig, parseNginxVersion, renderNginxConfig } from './nginx.js';

export const nginxConfigUsage = `Usage: skillserve nginx-config [--out FILE] [--prefix DIR] [--error-log FILE|stderr] [--nginx-version X.Y.Z]

Renders nginx/nginx.conf.template from the configuration (the gateways in NGINX_UPSTREAMS, TLS,
limits), as \`up\` does, for an nginx that runs elsewhere (a container, a pod). --prefix is the
directory nginx keeps its pid and temp files in (created here, with tmp/); --nginx-version the
nginx that will run it (default ${CURRENT_NGINX.join('.')}). Without --out, the config goes to stdout.`;

/** `skillserve nginx-config`: the same nginx config `up` writes, for containers and pods. */
export function nginxConfigCommand(config: Config, argv: string[], print: (text: string) => void): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      prefix: { type: 'string', default: '/tmp/nginx' },
      'error-log': { type: 'string', default: 'stderr' },
      'nginx-version': { type: 'string' },
    },
  });
  let version = CURRENT_NGINX;
  try {
    if (values['nginx-version']) version = parseNginxVersion(values['nginx-version']);
  } catch (err) {
    throw new UsageError(`--nginx-version: ${(err as Error).message}\n${nginxConfigUsage}`);
  }
  const prefix = resolve(values.prefix);
  const conf = renderNginxConfig(nginxParamsFromConfig(config, { prefix, errorLog: values['error-log'], version }));
  mkdirSync(join(prefix, 'tmp'), { recursive: true });
  if (values.out) {
    writeFileSync(values.out, conf);
    print(`skillserve: nginx config written to ${values.out}`);
  } else {
    print(conf);
  }
}
