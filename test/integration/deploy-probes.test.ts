import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findNginx, nginxVersion } from '../../src/cluster/preflight.js';
import { ensureSelfSignedCert } from '../../src/cluster/tls.js';
import { loadConfig } from '../../src/config/index.js';
import { resolvedCompose, serviceEnv } from '../helpers/compose-file.js';
import { DATABASE_URL, freePorts, testConfig } from '../helpers/env.js';
import { assembleRuntimeLayout } from '../helpers/image-layout.js';
import {
  containerEnv,
  K8S_DIR,
  type K8sObject,
  kustomize,
  podTemplates,
  readYamlDocuments,
} from '../helpers/k8s-manifests.js';
import { OwnRedis } from '../helpers/redis-server.js';
import {
  composeProbe,
  k8sProbes,
  PORT_VARS,
  type ProbeContext,
  type ProbeSpec,
  RoleProcess,
  runProbeSpec,
  waitProbes,
} from '../helpers/role-probes.js';

/**
 * Every health check the deployment files declare, run against the real roles: each role starts
 * from the image's file layout (compiled CLI, copied data files) with the environment its
 * Kubernetes container gets (ConfigMap, Secret, downward API), its ports moved to free ones here,
 * against a Redis started with the deployment's own flags and password. A probe that points at a
 * port or path the role does not serve fails here, not in someone's cluster.
 */
describe('deployment probes against the real roles', () => {
  const objects = kustomize(K8S_DIR);
  const secrets = readYamlDocuments(join(K8S_DIR, 'secrets.example.yaml')) as K8sObject[];
  const compose = resolvedCompose();
  const roles = ['skill-nlp', 'skill-onnx', 'dispatcher', 'gateway'];
  let layout: ReturnType<typeof assembleRuntimeLayout>;
  let redis: OwnRedis;
  let test: Awaited<ReturnType<typeof testConfig>>;
  const running: RoleProcess[] = [];
  const contexts = new Map<string, { ctx: ProbeContext; probes: ProbeSpec[] }>();
  let nginx: ChildProcess | undefined;

  before(async () => {
    layout = assembleRuntimeLayout();
    test = await testConfig();
    const redisCommand = [objects.find((o) => o.metadata.name === 'redis')!.spec.template.spec.containers[0].args]
      .flat()
      .join(' ');
    const password = secrets[0]!.stringData!['redis-password']!;
    // The deployment's redis-server flags, as a real redis-server reads them (password aside).
    const flags = redisCommand
      .replace(/^exec redis-server /, '')
      .replace(/--requirepass "\$REDISCLI_AUTH"/, '')
      .split(/\s+/)
      .filter(Boolean)
      .map((w) => (w === "''" ? '' : w));
    redis = await OwnRedis.start({ args: flags, password });
  });

  after(async () => {
    nginx?.kill('SIGQUIT');
    await Promise.all(running.map((r) => r.stop()));
    await redis?.destroy();
    await test?.cleanup();
    layout?.cleanup();
  });

  it('starts every role from the image layout with its Kubernetes environment, and every probe passes', async () => {
    for (const name of roles) {
      const { pod } = podTemplates(objects).find((p) => p.owner.metadata.name === name)!;
      const container = pod.containers[0];
      const env = layout.localEnv({ ...layout.env, ...containerEnv(container, objects, secrets) });
      const service = compose.services[name];
      const composeEnv = { ...layout.env, ...serviceEnv(service) };
      const ports = new Map<number, number>();
      const free = await freePorts(PORT_VARS.length);
      for (const [i, key] of PORT_VARS.entries()) {
        // Compose and Kubernetes must put the role's listeners on the same ports.
        assert.equal(
          loadConfig(composeEnv)[key],
          loadConfig(env)[key],
          `${name}: ${key} differs between compose and k8s`,
        );
        if (env[key] && Number(env[key]) > 0) ports.set(Number(env[key]), free[i]!);
      }
      const local: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        ...env,
        ...Object.fromEntries(PORT_VARS.filter((k) => env[k]).map((k) => [k, String(ports.get(Number(env[k])))])),
        // Loopback only on this shared machine; the advertised address follows.
        HOST: '127.0.0.1',
        ...(env.SKILL_ADVERTISE_HOST ? { SKILL_ADVERTISE_HOST: '127.0.0.1' } : {}),
        REDIS_URL: redis.url,
        DATABASE_URL,
        KEY_PREFIX: test.config.KEY_PREFIX,
        DATABASE_SCHEMA: test.config.DATABASE_SCHEMA,
        LOG_LEVEL: 'warn',
      };
      const probes = [...k8sProbes(container, name), composeProbe(service, name)];
      running.push(new RoleProcess(name, layout.cli, container.args, local));
      contexts.set(name, { ctx: { ports, cli: layout.cli, env: local }, probes });
    }
    for (const role of running) {
      const { ctx, probes } = contexts.get(role.name)!;
      const results = await waitProbes(probes, ctx, { alive: () => !role.exited });
      for (const r of results) assert.ok(r.ok, `${r.probe.origin}: ${r.detail}\n--- ${role.name} log:\n${role.log}`);
    }
  });

  it('a probe fails when the role does not serve what it asks for', async () => {
    const { ctx } = contexts.get('dispatcher')!;
    const [admin] = [...ctx.ports.keys()];
    assert.equal((await runProbeSpec({ origin: 'x', kind: 'http', port: admin!, path: '/nope' }, ctx)).ok, false);
    assert.equal((await runProbeSpec({ origin: 'x', kind: 'grpc', port: admin! }, ctx)).ok, false);
    assert.equal((await runProbeSpec({ origin: 'x', kind: 'http', port: 1, path: '/readyz' }, ctx)).ok, false);
  });

  it("nginx, rendered by the pod's init container, passes its probes and serves HTTPS to the gateways", async () => {
    const { owner, pod } = podTemplates(objects).find((p) => p.owner.metadata.name === 'nginx')!;
    const [init] = pod.initContainers;
    const [container] = pod.containers;
    const gatewayPort = contexts.get('gateway')!.ctx.ports.get(8801)!;
    const dir = join(layout.dir, '..', 'nginx');
    const cert = ensureSelfSignedCert(dir);
    const [publicPort, tlsPort] = (await freePorts(2)) as [number, number];
    const env = {
      PATH: process.env.PATH,
      ...layout.localEnv({ ...layout.env, ...containerEnv(init, objects, secrets) }),
      HOST: '127.0.0.1',
      PUBLIC_PORT: String(publicPort),
      TLS_PORT: String(tlsPort),
      TLS_CERT_FILE: cert.certFile,
      TLS_KEY_FILE: cert.keyFile,
      // This machine's nginx predates re-resolving upstream names (1.27.3): one address, no resolver.
      NGINX_UPSTREAMS: `127.0.0.1:${gatewayPort}`,
      NGINX_RESOLVER: '',
    };
    const bin = findNginx(loadConfig({}));
    const paths = (a: string) => a.replace('/etc/skillserve/nginx', dir).replace('/tmp/nginx', join(dir, 'prefix'));
    const args = (init.args as string[])
      .map(paths)
      .map((a) => (a.startsWith('--nginx-version=') ? `--nginx-version=${nginxVersion(bin).join('.')}` : a));
    execFileSync(process.execPath, [layout.cli, ...args], { env, stdio: 'pipe' });
    nginx = spawn(bin, (container.args as string[]).map(paths), { stdio: 'ignore' });
    const ctx: ProbeContext = {
      ports: new Map([
        [8443, tlsPort],
        [8788, publicPort],
      ]),
      cli: layout.cli,
      env,
    };
    const probes = [...k8sProbes(container, owner.metadata.name), composeProbe(compose.services.nginx, 'nginx')];
    const proc = nginx;
    const results = await waitProbes(probes, ctx, { alive: () => proc.exitCode === null, timeoutMs: 15_000 });
    for (const r of results) assert.ok(r.ok, `${r.probe.origin}: ${r.detail}`);

    // Through TLS to a gateway: no key → 401 from the gateway; /metrics is not public.
    const ca = readFileSync(cert.certFile);
    const get = (path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: tlsPort, path, ca, servername: 'localhost' }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('error', reject);
        req.end();
      });
    const skills = await get('/v1/skills');
    assert.equal(skills.status, 401, skills.body);
    assert.equal(JSON.parse(skills.body).error.code, 'UNAUTHORIZED');
    assert.equal((await get('/metrics')).status, 404);
  });
});
