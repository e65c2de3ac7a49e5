import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { configSchema, loadConfig } from '../../src/config/index.js';
import {
  type ComposeModel,
  composeConfig,
  composeSecrets,
  resolvedCompose,
  serviceEnv,
  skillserveServices,
} from '../helpers/compose-file.js';
import { dockerfileStages, stageEnv } from '../helpers/image-layout.js';
import { ROOT } from '../helpers/k8s-manifests.js';

const imageEnv = stageEnv(dockerfileStages().at(-1)!);
const known = new Set(Object.keys(configSchema.shape));

describe('docker-compose-ml.yml', () => {
  let model: ComposeModel;
  before(() => {
    model = resolvedCompose();
  });

  it('passes docker-compose config (the Compose Specification schema, interpolation)', () => {
    assert.ok(Object.keys(model.services).length >= 10, Object.keys(model.services).join(', '));
    for (const name of ['nginx', 'gateway', 'dispatcher', 'skill-nlp', 'skill-onnx', 'redis', 'postgres']) {
      assert.ok(model.services[name], `service ${name}`);
    }
    for (const name of ['prometheus', 'alertmanager', 'grafana']) assert.ok(model.services[name], `service ${name}`);
  });

  it('has no secret baked in: without the variables it refuses, naming each', () => {
    const dir = mkdtempSync(join(tmpdir(), 'skillserve-compose-'));
    try {
      const secrets = composeSecrets(dir);
      for (const name of Object.keys(secrets)) {
        const { [name]: _, ...rest } = secrets;
        const res = composeConfig(rest);
        assert.notEqual(res.status, 0, `config passed without ${name}`);
        assert.match(res.stderr, new RegExp(`set ${name}`), res.stderr);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('hardens every service: non-root, read-only, no capabilities, no new privileges, limits', () => {
    for (const [name, s] of Object.entries(model.services)) {
      assert.equal(s.read_only, true, `${name}: read_only`);
      assert.deepEqual(s.cap_drop, ['ALL'], `${name}: cap_drop`);
      assert.ok(s.security_opt?.includes('no-new-privileges:true'), `${name}: no-new-privileges`);
      assert.match(String(s.user ?? ''), /^[1-9]\d*:\d+$/, `${name}: a numeric non-root user`);
      for (const kind of ['limits', 'reservations']) {
        const r = s.deploy?.resources?.[kind];
        assert.ok(r?.cpus && r?.memory, `${name}: deploy.resources.${kind} with cpus and memory`);
      }
      assert.ok(!s.privileged && !s.cap_add && s.network_mode !== 'host', `${name}: nothing privileged`);
    }
  });

  it('checks the health of every long-running service, and starts in order of health', () => {
    for (const [name, s] of Object.entries(model.services)) {
      // docker-compose writes `disable: true` as `test: [NONE]`.
      const disabled = Boolean(s.healthcheck?.disable) || s.healthcheck?.test?.[0] === 'NONE';
      if (s.restart === 'no') assert.ok(disabled, `${name}: a one-shot exits; it has nothing to check`);
      else assert.ok(Array.isArray(s.healthcheck?.test) && !disabled, `${name}: healthcheck`);
      for (const [dep, { condition }] of Object.entries<any>(s.depends_on ?? {})) {
        const target = model.services[dep];
        assert.ok(target, `${name} depends on unknown ${dep}`);
        const expected = target.restart === 'no' ? 'service_completed_successfully' : 'service_healthy';
        assert.equal(condition, expected, `${name} → ${dep}`);
      }
    }
  });

  it("gives every skillserve role an environment the project's config schema accepts", () => {
    const roles = skillserveServices(model);
    assert.ok(roles.length >= 5);
    for (const [name, s] of roles) {
      const env = serviceEnv(s);
      for (const key of Object.keys(env)) assert.ok(known.has(key), `${name}: ${key} is not a skillserve setting`);
      const config = loadConfig({ ...imageEnv, ...env });
      if (s.command?.[0] === 'skill') assert.equal(`skill-${config.SKILL_NAME}`, name);
      // Fixed ports in containers, so health checks and scrapes know where to look.
      assert.ok(config.METRICS_PORT > 0 && (s.command?.[0] !== 'skill' || config.SKILL_PORT > 0), name);
    }
  });

  it('publishes only nginx to the world; Redis, Postgres and admin ports stay internal', () => {
    for (const [name, s] of Object.entries(model.services)) {
      for (const p of s.ports ?? []) {
        const spec = typeof p === 'string' ? p : `${p.host_ip ?? ''}:${p.published}:${p.target}`;
        if (name !== 'nginx') assert.match(spec, /^127\.0\.0\.1:/, `${name} publishes ${spec} beyond loopback`);
        assert.ok(!/:9464(\/|$)/.test(spec), `${name} publishes an admin port`);
      }
    }
    for (const name of ['redis', 'postgres', 'gateway', 'dispatcher', 'skill-nlp', 'skill-onnx']) {
      assert.deepEqual(Object.keys(model.services[name].networks), ['backend'], name);
      assert.equal(model.services[name].ports, undefined, `${name} publishes a port`);
    }
    assert.equal(model.networks?.backend?.internal, true);
  });

  it('keeps the queue Redis durable and non-evicting (AOF, noeviction) on a volume', () => {
    const redis = model.services.redis;
    const command = [redis.command].flat().join(' ');
    assert.match(command, /--appendonly yes/);
    assert.match(command, /--maxmemory-policy noeviction/);
    assert.match(command, /--requirepass/);
    assert.ok(
      redis.volumes.some((v: string | { target: string }) => (typeof v === 'string' ? v : v.target).includes('/data')),
    );
  });

  it('renders nginx from the same template, for the nginx image it runs, over the gateway service', () => {
    const render = model.services['nginx-config'];
    const nginx = model.services.nginx;
    const args: string[] = render.command;
    const version = args.find((a) => a.startsWith('--nginx-version='))!.split('=')[1]!;
    assert.match(nginx.image, new RegExp(`^nginx:${version.split('.').slice(0, 2).join('\\.')}(\\.|-|$)`));
    const env = { ...imageEnv, ...serviceEnv(render) };
    const config = loadConfig(env);
    const gateway = loadConfig({ ...imageEnv, ...serviceEnv(model.services.gateway) });
    assert.deepEqual(config.NGINX_UPSTREAMS, [`gateway:${gateway.GATEWAY_PORT}`]);
    for (const key of ['BODY_LIMIT_BYTES', 'MEMORY_BODY_LIMIT_BYTES', 'REQUEST_TIMEOUT_MS'] as const) {
      assert.equal(config[key], gateway[key], `nginx and the gateways disagree on ${key}`);
    }
    // The config nginx reads and the secrets it is given are where the rendered file says.
    assert.ok(args.includes('--out=/etc/skillserve/nginx/nginx.conf'));
    assert.ok(nginx.entrypoint.join(' ').includes('-c /etc/skillserve/nginx/nginx.conf'));
    assert.equal(config.TLS, 'on');
    for (const [file, secret] of [
      [config.TLS_CERT_FILE, 'tls_cert'],
      [config.TLS_KEY_FILE, 'tls_key'],
    ]) {
      assert.equal(file, `/run/secrets/${secret}`);
      assert.ok(
        nginx.secrets.some((s: string | { source: string }) => (typeof s === 'string' ? s : s.source) === secret),
      );
    }
    const healthUrl = nginx.healthcheck.test.find((a: string) => a.startsWith('http://'));
    assert.equal(new URL(healthUrl).port, String(config.PUBLIC_PORT));
  });

  it('scrapes every role on its admin port (promtool checks the Prometheus config)', () => {
    const file = join(ROOT, 'deploy', 'compose', 'prometheus.yml');
    execFileSync('promtool', ['check', 'config', '--syntax-only', file], { stdio: 'pipe' });
    const prom = parse(readFileSync(file, 'utf8')) as { scrape_configs: any[] };
    const scraped = new Map<string, number>();
    for (const job of prom.scrape_configs) {
      for (const sd of job.dns_sd_configs ?? []) for (const n of sd.names) scraped.set(n, sd.port);
      for (const sc of job.static_configs ?? []) {
        for (const target of sc.targets as string[]) {
          const host = target.split(':')[0]!;
          assert.ok(host === '127.0.0.1' || model.services[host], `${job.job_name}: no service ${host}`);
        }
      }
    }
    // The alert rules select on the job names of prometheus/prometheus.yml: the same names here.
    const onCall = join(ROOT, 'prometheus', 'prometheus.yml');
    if (existsSync(onCall)) {
      const theirs = new Set(
        (parse(readFileSync(onCall, 'utf8')) as { scrape_configs: any[] }).scrape_configs.map((j) => j.job_name),
      );
      for (const job of prom.scrape_configs)
        assert.ok(theirs.has(job.job_name), `job ${job.job_name} is not one the rules know`);
    }
    for (const [name, s] of skillserveServices(model)) {
      if (s.restart === 'no') continue;
      const config = loadConfig({ ...imageEnv, ...serviceEnv(s) });
      assert.equal(scraped.get(name), config.METRICS_PORT, `${name} is not scraped on METRICS_PORT`);
    }
    for (const name of scraped.keys()) assert.ok(model.services[name], `Prometheus scrapes unknown service ${name}`);
  });

  it("mounts files that exist (on-call's prometheus/ and grafana/ once they are there)", () => {
    for (const [name, s] of Object.entries(model.services)) {
      for (const v of s.volumes ?? []) {
        const source = typeof v === 'string' ? v.split(':')[0]! : v.type === 'bind' ? v.source : undefined;
        if (!source?.startsWith('/')) continue;
        const rel = relative(ROOT, source);
        const topLevel = rel.split('/')[0]!;
        // The on-call issue creates these folders; until it lands they are absent as a whole.
        if (['prometheus', 'grafana'].includes(topLevel) && !existsSync(join(ROOT, topLevel))) continue;
        assert.ok(existsSync(source), `${name} mounts ${rel}, which does not exist`);
      }
    }
  });
});
