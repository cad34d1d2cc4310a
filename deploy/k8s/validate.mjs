// Validates rendered Kubernetes manifests offline: each object against its kind's schema (kubernetes-models@4.5.1,
// the Kubernetes 1.30 OpenAPI schemas), then what a schema cannot see: a workload's selector must match its pod
// template's labels, a Service, PodDisruptionBudget or NetworkPolicy must select pods that some workload makes, and
// every ConfigMap, Secret, ServiceAccount and Service a workload names must be in the render (or in a namespace it
// does not manage). Prints one line per problem and exits 1 if there is any.
//
// Usage: node validate.mjs RENDERED.yaml...    (scripts/check-manifests.sh installs the packages and calls it)
import { readFileSync } from 'node:fs';
import yaml from 'js-yaml';

const problems = [];
const problem = (where, what) => problems.push(`${where}: ${what}`);

// kubernetes-models' module for an apiVersion: "v1" is the core group, "apps/v1" is apps.
async function schemaClass(apiVersion, kind) {
  let module;
  try {
    module = await import(`kubernetes-models/${apiVersion}`);
  } catch {
    return null;
  }
  return typeof module[kind] === 'function' ? module[kind] : null;
}

const objects = [];
for (const file of process.argv.slice(2)) {
  for (const doc of yaml.loadAll(readFileSync(file, 'utf8'))) {
    if (doc !== null && doc !== undefined) objects.push({ file, doc });
  }
}
if (objects.length === 0) problem('input', 'no objects');

const name = (o) => `${o.doc.kind ?? '?'} ${o.doc.metadata?.namespace ?? '-'}/${o.doc.metadata?.name ?? '?'}`;
for (const o of objects) {
  const { apiVersion, kind } = o.doc;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
    problem(`${o.file}: ${name(o)}`, 'no apiVersion or kind');
    continue;
  }
  const Model = await schemaClass(apiVersion, kind);
  if (Model === null) {
    problem(name(o), `unknown kind ${kind} in ${apiVersion}`);
    continue;
  }
  try {
    new Model(o.doc).validate();
  } catch (e) {
    problem(name(o), e.message);
  }
}

// What a schema cannot check.
const podTemplate = (doc) => doc.spec?.template;
const workloads = objects.filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(o.doc.kind));
const namespaceOf = (o) => o.doc.metadata?.namespace ?? 'default';
const matches = (selector, labels) =>
  Object.entries(selector ?? {}).every(([k, v]) => (labels ?? {})[k] === v);
const selectsSomeWorkload = (o, selector) =>
  workloads.some((w) => namespaceOf(w) === namespaceOf(o) && matches(selector, podTemplate(w.doc)?.metadata?.labels));

for (const w of workloads) {
  const selector = w.doc.spec?.selector?.matchLabels;
  if (!selector || Object.keys(selector).length === 0) {
    problem(name(w), 'no spec.selector.matchLabels');
  } else if (!matches(selector, podTemplate(w.doc)?.metadata?.labels)) {
    problem(name(w), 'spec.selector.matchLabels does not match the pod template\'s labels');
  }
}
for (const o of objects) {
  const { kind, spec } = o.doc;
  if (kind === 'Service' && !selectsSomeWorkload(o, spec?.selector)) {
    problem(name(o), 'its selector matches no workload\'s pods');
  }
  if (kind === 'Service' && (!spec?.selector || Object.keys(spec.selector).length === 0)) {
    problem(name(o), 'no selector');
  }
  if (kind === 'PodDisruptionBudget' && !selectsSomeWorkload(o, spec?.selector?.matchLabels)) {
    problem(name(o), 'its selector matches no workload\'s pods');
  }
  if (kind === 'NetworkPolicy' && Object.keys(spec?.podSelector?.matchLabels ?? {}).length > 0 &&
      !selectsSomeWorkload(o, spec.podSelector.matchLabels)) {
    problem(name(o), 'its podSelector matches no workload\'s pods');
  }
}

// References from workloads to objects of their namespace.
const managedNamespaces = new Set(objects.map(namespaceOf));
const has = (kind, namespace, objectName) =>
  objects.some((o) => o.doc.kind === kind && namespaceOf(o) === namespace && o.doc.metadata?.name === objectName);
for (const w of workloads) {
  const ns = namespaceOf(w);
  if (!managedNamespaces.has(ns)) continue;
  const pod = podTemplate(w.doc)?.spec ?? {};
  const need = (kind, objectName, why) => {
    if (objectName && !has(kind, ns, objectName)) problem(name(w), `${why} names ${kind} ${objectName}, not rendered`);
  };
  need('ServiceAccount', pod.serviceAccountName, 'serviceAccountName');
  if (w.doc.kind === 'StatefulSet') need('Service', w.doc.spec?.serviceName, 'serviceName');
  for (const v of pod.volumes ?? []) {
    need('ConfigMap', v.configMap?.name, `volume ${v.name}`);
    need('Secret', v.secret?.secretName, `volume ${v.name}`);
  }
  const mountable = new Set([...(pod.volumes ?? []).map((v) => v.name),
    ...(w.doc.spec?.volumeClaimTemplates ?? []).map((t) => t.metadata?.name)]);
  for (const c of [...(pod.initContainers ?? []), ...(pod.containers ?? [])]) {
    for (const e of c.env ?? []) {
      need('Secret', e.valueFrom?.secretKeyRef?.name, `container ${c.name} env ${e.name}`);
      need('ConfigMap', e.valueFrom?.configMapKeyRef?.name, `container ${c.name} env ${e.name}`);
    }
    for (const m of c.volumeMounts ?? []) {
      if (!mountable.has(m.name)) problem(name(w), `container ${c.name} mounts volume ${m.name}, which the pod lacks`);
    }
    const ports = new Set((c.ports ?? []).map((p) => p.name));
    for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
      const port = c[probe]?.httpGet?.port ?? c[probe]?.tcpSocket?.port;
      if (typeof port === 'string' && !ports.has(port)) {
        problem(name(w), `container ${c.name} ${probe} uses port ${port}, which it does not name`);
      }
    }
  }
}

for (const p of problems) console.log(p);
console.log(`validate: ${objects.length} objects, ${problems.length} problems`);
process.exit(problems.length > 0 ? 1 : 0);
