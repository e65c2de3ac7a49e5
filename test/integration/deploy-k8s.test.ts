import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { configSchema, loadConfig } from '../../src/config/index.js';
import { dockerfileStages, stageEnv } from '../helpers/image-layout.js';
import {
  containerEnv,
  K8S_DIR,
  type K8sObject,
  kustomize,
  modelFor,
  objectId,
  podTemplates,
  readYamlDocuments,
  ROOT,
  selects,
  strictFieldErrors,
} from '../helpers/k8s-manifests.js';

const objects = kustomize(K8S_DIR);
const monitoring = kustomize(join(K8S_DIR, 'monitoring'));
const secrets = readYamlDocuments(join(K8S_DIR, 'secrets.example.yaml')) as K8sObject[];
const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const imageEnv = stageEnv(dockerfileStages().at(-1)!);
const known = new Set(Object.keys(configSchema.shape));
const isSkillserve = (c: any) => String(c.image).startsWith('skillserve:');
const deployments = objects.filter((o) => o.kind === 'Deployment');
const scalable = deployments.filter((d) =>
  ['gateway', 'dispatcher', 'skill'].includes(d.metadata.labels!['app.kubernetes.io/component']!),
);

describe('deploy/k8s', () => {
  it('builds as kustomize builds it (kubectl kustomize, where kubectl is installed)', (t) => {
    const ids = objects.map(objectId);
    assert.equal(new Set(ids).size, ids.length, 'an object is defined twice');
    const res = spawnSync('kubectl', ['kustomize', K8S_DIR], { encoding: 'utf8' });
    if (res.error) {
      t.skip('kubectl is not installed; the build above is the offline one (test/helpers/k8s-manifests.ts)');
      return;
    }
    assert.equal(res.status, 0, res.stderr);
    const theirs = parseAllDocuments(res.stdout).map((d) => objectId(d.toJS() as K8sObject));
    assert.deepEqual([...theirs].sort(), [...ids].sort());
  });

  it('validates every object against the Kubernetes API schemas (kubernetes-models)', async () => {
    for (const o of [...objects, ...monitoring, ...secrets]) {
      const Model = await modelFor(o);
      const { source: _source, ...plain } = o;
      assert.doesNotThrow(() => new Model(plain).validate(), `${objectId(o)} (${o.source ?? 'secrets.example.yaml'})`);
    }
  });

  it('has no field the API does not know (TypeScript excess-property check on the same models)', () => {
    // The check can fail: a misspelt field is caught.
    const typo = structuredClone(deployments[0]!);
    typo.spec.template.spec.containers[0].livenesProbe = typo.spec.template.spec.containers[0].livenessProbe;
    assert.match(strictFieldErrors([typo]).join('\n'), /'"?livenesProbe"?' does not exist/);
    assert.deepEqual(strictFieldErrors([...objects, ...monitoring, ...secrets]), []);
  });

  it("keeps settings in one ConfigMap that the project's config schema accepts, for every container", () => {
    for (const { owner, pod } of podTemplates(objects)) {
      for (const c of [...(pod.initContainers ?? []), ...pod.containers].filter(isSkillserve)) {
        assert.equal(c.image, `skillserve:${version}`, `${objectId(owner)}: image tag is the package version`);
        const env = containerEnv(c, objects, secrets);
        for (const key of Object.keys(env)) assert.ok(known.has(key), `${objectId(owner)}: ${key} is not a setting`);
        const config = loadConfig({ ...imageEnv, ...env });
        if (c.args[0] === 'skill') assert.equal(`skill-${config.SKILL_NAME}`, owner.metadata.name);
      }
    }
  });

  it('points the ConfigMap at Services that exist in the namespace, on their ports', () => {
    const config = loadConfig(objects.find((o) => o.kind === 'ConfigMap')!.data);
    const urls = [
      new URL(config.REDIS_URL),
      new URL(config.DATABASE_URL),
      new URL(`tcp://${config.NGINX_UPSTREAMS[0]}`),
    ];
    for (const url of urls) {
      const m = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local$/.exec(url.hostname);
      assert.ok(m, `${url.hostname}: a fully qualified Service name`);
      const svc = objects.find((o) => o.kind === 'Service' && o.metadata.name === m[1]);
      assert.ok(svc, `no Service ${m[1]}`);
      assert.equal(svc.metadata.namespace, m[2], `${m[1]} lives in ${svc.metadata.namespace}`);
      assert.ok(
        svc.spec.ports.some((p: any) => p.port === Number(url.port)),
        `Service ${m[1]} has no port ${url.port}`,
      );
    }
    const headless = objects.find((o) => o.metadata.name === 'gateway-headless')!;
    assert.equal(headless.spec.clusterIP, 'None', 'nginx balances over pod addresses, not one ClusterIP');
  });

  it('references only Secrets (and keys) the example defines', () => {
    for (const { owner, pod } of podTemplates(objects)) {
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) containerEnv(c, objects, secrets);
      for (const v of pod.volumes ?? []) {
        if (v.secret)
          assert.ok(
            secrets.some((s) => s.metadata.name === v.secret.secretName),
            `${objectId(owner)}: ${v.secret.secretName}`,
          );
      }
    }
  });

  it('runs every pod under the restricted Pod Security profile, with requests and limits', () => {
    assert.equal(
      objects.find((o) => o.kind === 'Namespace')!.metadata.labels!['pod-security.kubernetes.io/enforce'],
      'restricted',
    );
    for (const { owner, pod } of podTemplates(objects)) {
      const id = objectId(owner);
      assert.ok(!pod.hostNetwork && !pod.hostPID && !pod.hostIPC, `${id}: host namespaces`);
      assert.ok(!(pod.volumes ?? []).some((v: any) => v.hostPath), `${id}: hostPath`);
      assert.equal(pod.automountServiceAccountToken, false, `${id}: no API token`);
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
        const sc = c.securityContext ?? {};
        const where = `${id} ${c.name}`;
        assert.equal(sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot, true, `${where}: runAsNonRoot`);
        assert.notEqual(sc.runAsUser ?? pod.securityContext?.runAsUser, 0, `${where}: uid 0`);
        assert.equal(sc.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation`);
        assert.equal(sc.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`);
        assert.deepEqual(sc.capabilities?.drop, ['ALL'], `${where}: drop ALL`);
        assert.ok(!sc.capabilities?.add && !sc.privileged, `${where}: privileges`);
        const seccomp = sc.seccompProfile?.type ?? pod.securityContext?.seccompProfile?.type;
        assert.equal(seccomp, 'RuntimeDefault', `${where}: seccomp`);
        for (const kind of ['requests', 'limits']) {
          assert.ok(c.resources?.[kind]?.cpu && c.resources?.[kind]?.memory, `${where}: ${kind}`);
        }
      }
    }
  });

  it("scales each role on CPU by the brief's policy (5 min above 70 %, 10 min below, 2 to 10)", () => {
    for (const d of scalable) {
      const hpa = objects.find(
        (o) => o.kind === 'HorizontalPodAutoscaler' && o.spec.scaleTargetRef.name === d.metadata.name,
      );
      assert.ok(hpa, `no HPA for ${d.metadata.name}`);
      assert.equal(hpa.apiVersion, 'autoscaling/v2');
      assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata.name });
      assert.equal(hpa.spec.minReplicas, 2);
      assert.equal(hpa.spec.maxReplicas, 10);
      assert.deepEqual(hpa.spec.metrics, [
        { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } },
      ]);
      assert.equal(hpa.spec.behavior.scaleUp.stabilizationWindowSeconds, 300);
      assert.equal(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds, 600);
      assert.deepEqual(hpa.spec.behavior.scaleDown.policies, [{ type: 'Pods', value: 1, periodSeconds: 600 }]);
      assert.ok(d.spec.replicas >= hpa.spec.minReplicas, `${d.metadata.name}: starts at the HPA's minimum`);
    }
    assert.equal(scalable.length, 4);
  });

  it('gives every role a disruption budget, and Services and policies that select its pods', () => {
    const pods = podTemplates(objects);
    for (const { owner, labels } of pods) {
      if (owner.kind !== 'Deployment') continue;
      const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget' && selects(o.spec.selector, labels));
      assert.equal(pdbs.length, 1, `${objectId(owner)}: one PDB`);
    }
    for (const o of objects.filter((x) => x.kind === 'Service' || x.kind === 'NetworkPolicy')) {
      const selector = o.kind === 'Service' ? o.spec.selector : o.spec.podSelector;
      const matched = pods.filter((p) => selects(selector, p.labels));
      assert.ok(matched.length > 0, `${objectId(o)} selects no pod`);
      const ports = matched.flatMap((p) => p.pod.containers.flatMap((c: any) => c.ports ?? []));
      const wanted =
        o.kind === 'Service'
          ? o.spec.ports.map((p: any) => p.targetPort)
          : (o.spec.ingress ?? []).flatMap((r: any) => (r.ports ?? []).map((p: any) => p.port));
      for (const port of wanted) {
        assert.ok(
          ports.some((p: any) => p.name === port || p.containerPort === port),
          `${objectId(o)}: no pod port ${port}`,
        );
      }
    }
  });

  it('keeps admin ports, Redis and Postgres off the public path', () => {
    const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
    const deny = policies.find((p) => Object.keys(p.spec.podSelector).length === 0);
    assert.deepEqual(deny?.spec.policyTypes, ['Ingress'], 'a default-deny ingress policy');
    assert.equal(deny?.spec.ingress, undefined);
    const open = policies.flatMap((p) =>
      (p.spec.ingress ?? []).filter((r: any) => !r.from).map((r: any) => ({ p, r })),
    );
    for (const { p, r } of open) {
      assert.deepEqual(
        r.ports.map((x: any) => x.port),
        [8443],
        `${objectId(p)} opens more than HTTPS to everyone`,
      );
    }
    const publicServices = objects.filter((o) => o.kind === 'Service' && o.spec.type === 'LoadBalancer');
    assert.deepEqual(
      publicServices.map((s) => s.metadata.name),
      ['nginx'],
    );
    assert.equal(
      publicServices[0]!.spec.externalTrafficPolicy,
      'Local',
      "nginx's per-IP limit needs the client address",
    );
  });

  it('drains before it is killed: grace period above preStop pause plus SHUTDOWN_TIMEOUT_MS', () => {
    const config = loadConfig(objects.find((o) => o.kind === 'ConfigMap')!.data);
    for (const { owner, pod } of podTemplates(objects).filter((p) => p.pod.containers.some(isSkillserve))) {
      const pause = Math.max(0, ...pod.containers.map((c: any) => c.lifecycle?.preStop?.sleep?.seconds ?? 0));
      assert.ok(
        pod.terminationGracePeriodSeconds > pause + config.SHUTDOWN_TIMEOUT_MS / 1000,
        `${objectId(owner)}: ${pod.terminationGracePeriodSeconds} s`,
      );
    }
    const gateway = deployments.find((d) => d.metadata.name === 'gateway')!;
    assert.ok(gateway.spec.template.spec.containers[0].lifecycle.preStop, 'gateways pause before SIGTERM');
  });

  it('probes skills with native gRPC health checks, and runs the nginx the config is rendered for', () => {
    for (const d of deployments.filter((x) => x.metadata.labels!['app.kubernetes.io/component'] === 'skill')) {
      const [c] = d.spec.template.spec.containers;
      assert.ok(c.readinessProbe.grpc && c.startupProbe.grpc, `${d.metadata.name}: grpc probes`);
      assert.ok(
        c.env.some(
          (e: any) => e.name === 'SKILL_ADVERTISE_HOST' && e.valueFrom?.fieldRef?.fieldPath === 'status.podIP',
        ),
      );
    }
    const nginx = deployments.find((d) => d.metadata.name === 'nginx')!.spec.template.spec;
    const rendered = nginx.initContainers[0].args.find((a: string) => a.startsWith('--nginx-version=')).split('=')[1];
    assert.match(nginx.containers[0].image, new RegExp(`^nginx:${rendered.split('.').slice(0, 2).join('\\.')}`));
  });

  it('scrapes every role through the PodMonitor under the job names the alert rules select on', () => {
    const monitor = monitoring.find((o) => o.kind === 'PodMonitor')!;
    const endpoint = monitor.spec.podMetricsEndpoints[0];
    const selected = podTemplates(objects).filter((p) => selects(monitor.spec.selector, p.labels));
    assert.deepEqual(selected.map((p) => p.owner.metadata.name).sort(), scalable.map((d) => d.metadata.name).sort());
    const onCall = join(ROOT, 'prometheus', 'prometheus.yml');
    const jobs = existsSync(onCall)
      ? new Set(
          (parse(readFileSync(onCall, 'utf8')) as { scrape_configs: { job_name: string }[] }).scrape_configs.map(
            (j) => j.job_name,
          ),
        )
      : undefined;
    for (const { owner, pod, labels } of selected) {
      const job = labels[monitor.spec.jobLabel];
      assert.match(String(job), /^skillserve-(gateway|dispatcher|skill)$/, `${objectId(owner)}: job label`);
      if (jobs) assert.ok(jobs.has(job!), `${objectId(owner)}: job ${job} is not one the rules know`);
      const port = pod.containers[0].ports.find((p: any) => p.name === endpoint.port);
      assert.equal(port?.containerPort, Number(owner.spec.template.metadata.annotations['prometheus.io/port']));
    }
  });
});
