import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const K8S_DIR = join(ROOT, 'deploy', 'k8s');

/** A Kubernetes object as read from YAML, with where it came from. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  [key: string]: unknown;
  /** Not part of the object: the file it was read from, relative to the repository. */
  readonly source?: string;
}

/** Every document of a YAML file; a YAML error fails with the file's name. */
export function readYamlDocuments(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  return docs.flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`${relative(ROOT, file)}: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as unknown;
    return value === null || value === undefined ? [] : [value];
  });
}

const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'PersistentVolume', 'StorageClass']);
const KUSTOMIZATION_FIELDS = new Set(['apiVersion', 'kind', 'namespace', 'resources']);

/**
 * What `kubectl kustomize <dir>` builds, for the fields our kustomizations use (resources,
 * namespace); any other field is refused, so a kustomization cannot grow past what this offline
 * build understands without the test saying so.
 */
export function kustomize(dir: string): K8sObject[] {
  const file = join(dir, 'kustomization.yaml');
  const [k] = readYamlDocuments(file) as [Record<string, unknown>];
  for (const field of Object.keys(k)) {
    if (!KUSTOMIZATION_FIELDS.has(field)) {
      throw new Error(`${relative(ROOT, file)}: field "${field}" is not understood by test/helpers/k8s-manifests.ts`);
    }
  }
  if (k.kind !== 'Kustomization') throw new Error(`${relative(ROOT, file)}: kind is ${String(k.kind)}`);
  const objects = ((k.resources ?? []) as string[]).flatMap((entry) => {
    const path = join(dir, entry);
    if (!existsSync(path)) throw new Error(`${relative(ROOT, file)}: resource ${entry} does not exist`);
    if (statSync(path).isDirectory()) return kustomize(path);
    return readYamlDocuments(path).map((o) => Object.assign(o as K8sObject, { source: relative(ROOT, path) }));
  });
  const namespace = k.namespace as string | undefined;
  if (namespace) {
    for (const o of objects) if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = namespace;
  }
  return objects;
}

/** `kind/namespace/name`, the identity kustomize and kubectl use. */
export const objectId = (o: Pick<K8sObject, 'kind' | 'metadata'>) =>
  `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

type ModelClass = new (data: unknown) => { validate(): void };

/** The kubernetes-models class for an object's apiVersion and kind (JSON-schema validation). */
export async function modelFor(o: Pick<K8sObject, 'apiVersion' | 'kind'>): Promise<ModelClass> {
  const modules: Record<string, () => Promise<Record<string, unknown>>> = {
    v1: () => import('kubernetes-models/v1'),
    'apps/v1': () => import('kubernetes-models/apps/v1'),
    'autoscaling/v2': () => import('kubernetes-models/autoscaling/v2'),
    'policy/v1': () => import('kubernetes-models/policy/v1'),
    'networking.k8s.io/v1': () => import('kubernetes-models/networking.k8s.io/v1'),
    'monitoring.coreos.com/v1': () => import('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1'),
  };
  const load = modules[o.apiVersion];
  const Model = load ? (await load())[o.kind] : undefined;
  if (typeof Model !== 'function') throw new Error(`no model for ${o.apiVersion} ${o.kind}`);
  return Model as ModelClass;
}

/** The module whose `I<Kind>` type describes an apiVersion, for the strict check. */
function typesModule(apiVersion: string): string {
  if (apiVersion === 'monitoring.coreos.com/v1')
    return '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
  return apiVersion === 'v1' ? 'kubernetes-models/v1' : `kubernetes-models/${apiVersion}`;
}

/**
 * Unknown fields, which JSON-schema validation lets through (a misspelt `livenesProbe` would be
 * silently dropped by the API server): each object becomes a typed object literal checked by the
 * TypeScript compiler against the same models' types, whose excess-property check names any
 * field the API does not have. Returns the compiler's messages, each naming the object.
 */
export function strictFieldErrors(objects: K8sObject[]): string[] {
  const imports = new Map<string, string>();
  const lines: string[] = [];
  objects.forEach((o, i) => {
    const alias = `T${i}`;
    imports.set(alias, `import type { I${o.kind} as ${alias} } from '${typesModule(o.apiVersion)}';`);
    const { source: _source, ...plain } = o;
    lines.push(`// ${objectId(o)}\nexport const o${i}: ${alias} = ${JSON.stringify(plain, null, 1)};`);
  });
  const fileName = join(ROOT, 'test', '__k8s_strict_check__.ts');
  const text = [...imports.values(), ...lines].join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    name === fileName ? ts.createSourceFile(name, text, lang) : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === fileName || fileExists(name);
  const program = ts.createProgram([fileName], options, host);
  const source = program.getSourceFile(fileName)!;
  return ts.getPreEmitDiagnostics(program, source).map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (d.start === undefined) return message;
    // The object the error is in: the nearest `// kind/ns/name` line above it.
    const before = text.slice(0, d.start);
    const owner = /\/\/ (\S+)\n[^]*$/.exec(before.slice(before.lastIndexOf('\n// ')))?.[1] ?? '?';
    return `${owner}: ${message}`;
  });
}

/** A pod template's containers with their pod spec, from a Deployment or StatefulSet. */
export function podTemplates(objects: K8sObject[]): { owner: K8sObject; pod: any; labels: Record<string, string> }[] {
  return objects
    .filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')
    .map((owner) => ({ owner, pod: owner.spec.template.spec, labels: owner.spec.template.metadata.labels ?? {} }));
}

/** Whether a label selector's matchLabels/matchExpressions select `labels`. */
export function selects(selector: any, labels: Record<string, string>): boolean {
  const matchLabels = (selector?.matchLabels ?? (selector?.matchExpressions ? {} : selector)) as Record<string, string>;
  if (!Object.entries(matchLabels ?? {}).every(([k, v]) => labels[k] === v)) return false;
  return ((selector?.matchExpressions ?? []) as { key: string; operator: string; values?: string[] }[]).every((e) => {
    const value = labels[e.key];
    if (e.operator === 'In') return value !== undefined && (e.values ?? []).includes(value);
    if (e.operator === 'NotIn') return value === undefined || !(e.values ?? []).includes(value);
    if (e.operator === 'Exists') return value !== undefined;
    if (e.operator === 'DoesNotExist') return value === undefined;
    throw new Error(`unknown selector operator ${e.operator}`);
  });
}

/**
 * The environment a container sees: its ConfigMaps (envFrom), then its env, with Secret keys
 * taken from `secrets` (the example file) and `status.podIP` as `podIp`. A reference to a
 * ConfigMap, Secret or key that does not exist is an error.
 */
export function containerEnv(
  container: any,
  objects: K8sObject[],
  secrets: K8sObject[],
  podIp = '10.0.0.7',
): Record<string, string> {
  const env: Record<string, string> = {};
  const find = (kind: string, name: string, pool: K8sObject[]) => {
    const found = pool.find((o) => o.kind === kind && o.metadata.name === name);
    if (!found) throw new Error(`container ${container.name}: ${kind} ${name} does not exist`);
    return found;
  };
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, find('ConfigMap', from.configMapRef.name, objects).data);
    else throw new Error(`container ${container.name}: envFrom other than a ConfigMap`);
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = String(e.value);
    else if (e.valueFrom?.secretKeyRef) {
      const { name, key } = e.valueFrom.secretKeyRef;
      const value = find('Secret', name, secrets).stringData?.[key];
      if (value === undefined) throw new Error(`container ${container.name}: Secret ${name} has no key ${key}`);
      env[e.name] = value;
    } else if (e.valueFrom?.fieldRef?.fieldPath === 'status.podIP') env[e.name] = podIp;
    else throw new Error(`container ${container.name}: env ${e.name} from a source this test does not know`);
  }
  return env;
}

export const repoPath = (...parts: string[]) => join(ROOT, ...parts);
