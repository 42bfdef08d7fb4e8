// The deployment files (Dockerfile, deploy/kubernetes, deploy/prometheus, deploy/grafana) and
// docs/operations.md are checked against the gateway itself: the ports, paths and config they
// name must be the ones the code serves and loads, and every metric a rule or panel queries must
// be one the registry exports. A renamed metric or a moved port then fails here, not in production.

import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { GatewayMetrics } from '../../src/admin/metrics.js';
import { runValidate } from '../../src/cli/validate.js';
import { loadConfig, loadGatewayConfig } from '../../src/config/load.js';
import type { GatewayConfig, RoutesConfig } from '../../src/config/types.js';
import { simpleRoutes, startGateway } from '../helpers/gateway.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');
const K8S = join(DEPLOY, 'kubernetes');

// ---------------------------------------------------------------------------------------------
// Reading untyped YAML/JSON without `any`: each accessor asserts the shape it expects.

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function obj(value: unknown, what: string): Obj {
  if (!isObj(value)) throw new Error(`${what}: expected a mapping, got ${JSON.stringify(value)}`);
  return value;
}

function arr(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${what}: expected a list, got ${JSON.stringify(value)}`);
  return value;
}

function str(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new Error(`${what}: expected a string, got ${JSON.stringify(value)}`);
  return value;
}

function num(value: unknown, what: string): number {
  if (typeof value !== 'number') throw new Error(`${what}: expected a number, got ${JSON.stringify(value)}`);
  return value;
}

function at(value: unknown, path: string): unknown {
  let current = value;
  for (const key of path.split('.')) current = obj(current, path)[key];
  return current;
}

async function yamlFilesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

interface K8sDoc {
  readonly file: string;
  readonly kind: string;
  readonly name: string;
  readonly body: Obj;
}

async function kubernetesDocs(): Promise<K8sDoc[]> {
  const docs: K8sDoc[] = [];
  for (const file of await yamlFilesUnder(K8S)) {
    for (const doc of parseAllDocuments(await readFile(file, 'utf8'))) {
      const body = doc.toJS({ maxAliasCount: -1 }) as unknown;
      if (body === null || body === undefined) continue;
      const o = obj(body, relative(ROOT, file));
      const kind = str(o.kind, `${relative(ROOT, file)}: kind`);
      // A Kustomization is kustomize's own file, not an API object: it has no metadata.name.
      const name = kind === 'Kustomization' ? 'kustomization' : str(at(o, 'metadata.name'), `${relative(ROOT, file)}: metadata.name`);
      docs.push({ file, kind, name, body: o });
    }
  }
  return docs;
}

function find(docs: readonly K8sDoc[], kind: string, name: string): K8sDoc {
  const doc = docs.find((d) => d.kind === kind && d.name === name);
  if (doc === undefined) throw new Error(`no ${kind} ${name} under deploy/kubernetes`);
  return doc;
}

/** A named or numeric container port → its number. */
function portNumber(container: Obj, port: unknown): number {
  if (typeof port === 'number') return port;
  const named = arr(container.ports, 'container ports').map((p) => obj(p, 'port')).find((p) => p.name === port);
  if (named === undefined) throw new Error(`container has no port named ${String(port)}`);
  return num(named.containerPort, 'containerPort');
}

function podSpec(deployment: K8sDoc): Obj {
  return obj(at(deployment.body, 'spec.template.spec'), `${deployment.name} pod spec`);
}

function firstContainer(deployment: K8sDoc): Obj {
  const [container] = arr(podSpec(deployment).containers, `${deployment.name} containers`);
  return obj(container, `${deployment.name} container`);
}

function matches(selector: Obj, labels: Obj): boolean {
  return Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
}

// ---------------------------------------------------------------------------------------------
// The ConfigMap's files, loaded by the real loader.

interface ConfigMapConfig {
  readonly gateway: GatewayConfig;
  readonly routes: RoutesConfig;
  readonly dir: string;
  readonly gatewayFile: string;
}

async function configMapConfig(docs: readonly K8sDoc[]): Promise<ConfigMapConfig> {
  const data = obj(find(docs, 'ConfigMap', 'gateway-config').body.data, 'ConfigMap data');
  const dir = await mkdtemp(join(tmpdir(), 'gw-deploy-'));
  const gatewayFile = join(dir, 'gateway.yaml');
  await writeFile(gatewayFile, str(data['gateway.yaml'], 'data["gateway.yaml"]'));
  await writeFile(join(dir, 'routes.yaml'), str(data['routes.yaml'], 'data["routes.yaml"]'));
  const { gateway, routes } = await loadConfig(gatewayFile, {});
  return { gateway, routes, dir, gatewayFile };
}

// ---------------------------------------------------------------------------------------------
// The metrics the gateway exports, as Prometheus sees them.

/** Labels Prometheus adds to every series of a scrape target. */
const TARGET_LABELS = new Set(['instance', 'job']);

interface ExportedMetric {
  readonly name: string;
  readonly type: string;
  readonly labels: ReadonlySet<string>;
}

/** Every metric of a gateway with a redis block (the most there can be), by registered name. */
async function registryMetrics(): Promise<Map<string, ExportedMetric>> {
  const metrics = new GatewayMetrics({ endpointStates: () => [], panicStates: () => [] }, { redis: true });
  const byName = new Map<string, ExportedMetric>();
  const asJson = await metrics.registry.getMetricsAsJSON();
  for (const metric of metrics.registry.getMetricsAsArray()) {
    // prom-client keeps the declared label names on the metric object but leaves them out of
    // its type declarations.
    const declared: unknown = Reflect.get(metric, 'labelNames');
    const labels = new Set(arr(declared, `${metric.name} labelNames`).map((l) => str(l, `${metric.name} label`)));
    const json = asJson.find((m) => m.name === metric.name);
    byName.set(metric.name, { name: metric.name, type: String(json?.type ?? metric.type), labels });
  }
  return byName;
}

/** Series names as stored in Prometheus: histograms and summaries expand into their parts. */
function seriesNames(metrics: ReadonlyMap<string, ExportedMetric>): Map<string, ReadonlySet<string>> {
  const series = new Map<string, ReadonlySet<string>>();
  for (const m of metrics.values()) {
    if (m.type === 'histogram') {
      series.set(`${m.name}_bucket`, new Set([...m.labels, 'le']));
      series.set(`${m.name}_sum`, m.labels);
      series.set(`${m.name}_count`, m.labels);
    } else if (m.type === 'summary') {
      series.set(m.name, new Set([...m.labels, 'quantile']));
      series.set(`${m.name}_sum`, m.labels);
      series.set(`${m.name}_count`, m.labels);
    } else {
      series.set(m.name, m.labels);
    }
  }
  return series;
}

const METRIC_IDENTIFIER = /\b(?:gateway|process|nodejs)_[a-z0-9_]+\b/g;

/**
 * Problems of one PromQL expression (or Grafana query) against the exported series: unknown
 * metric names, label matchers naming a label the metric lacks, grouping clauses naming a label
 * none of the expression's metrics has.
 */
function promqlProblems(expr: string, series: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  const problems: string[] = [];
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const used = new Set(withoutStrings.match(METRIC_IDENTIFIER) ?? []);
  for (const name of used) if (!series.has(name)) problems.push(`unknown metric ${name}`);

  for (const selector of expr.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}/g)) {
    const [, name = '', matchers = ''] = selector;
    const labels = series.get(name);
    if (labels === undefined) continue;
    for (const matcher of matchers.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"/g)) {
      const label = matcher[1] ?? '';
      if (!labels.has(label) && !TARGET_LABELS.has(label)) problems.push(`${name} has no label ${label}`);
    }
  }

  const available = new Set(TARGET_LABELS);
  for (const name of used) for (const label of series.get(name) ?? []) available.add(label);
  for (const clause of withoutStrings.matchAll(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)) {
    for (const label of (clause[1] ?? '').split(',').map((l) => l.trim()).filter((l) => l !== '')) {
      if (!available.has(label)) problems.push(`no metric of the expression has label ${label}`);
    }
  }

  for (const call of expr.matchAll(/label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{[^}]*\})?\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)/g)) {
    const [, name = '', label = ''] = call;
    const labels = series.get(name);
    if (labels !== undefined && !labels.has(label) && !TARGET_LABELS.has(label)) problems.push(`label_values: ${name} has no label ${label}`);
  }
  return problems;
}

interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly rule: Obj;
}

async function alertRules(): Promise<AlertRule[]> {
  const file = obj(parse(await readFile(join(DEPLOY, 'prometheus', 'alerts.yaml'), 'utf8')), 'alerts.yaml');
  return arr(file.groups, 'groups').flatMap((group) =>
    arr(obj(group, 'group').rules, 'rules').map((r) => {
      const rule = obj(r, 'rule');
      return { alert: str(rule.alert, 'alert'), expr: str(rule.expr, 'expr'), rule };
    }),
  );
}

/** Every PromQL expression and variable query of the dashboard, with where it is. */
function dashboardQueries(dashboard: Obj): { where: string; query: string }[] {
  const found: { where: string; query: string }[] = [];
  const visit = (value: unknown, where: string): void => {
    if (Array.isArray(value)) value.forEach((v, i) => visit(v, `${where}[${i}]`));
    else if (isObj(value)) {
      const label = typeof value.title === 'string' ? `${where} "${value.title}"` : where;
      for (const [key, v] of Object.entries(value)) {
        if ((key === 'expr' || key === 'query' || key === 'definition') && typeof v === 'string' && v !== '' && v !== 'prometheus') found.push({ where: `${label}.${key}`, query: v });
        else visit(v, `${label}.${key}`);
      }
    }
  };
  visit(dashboard, 'dashboard');
  return found;
}

// ---------------------------------------------------------------------------------------------
// docs/operations.md

async function operationsDoc(): Promise<string> {
  return readFile(join(ROOT, 'docs', 'operations.md'), 'utf8');
}

function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`docs/operations.md has no "## ${heading}" section`);
  const next = markdown.indexOf('\n## ', start + 1);
  return markdown.slice(start, next < 0 ? undefined : next);
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line);
    if (heading?.[1] === undefined) continue;
    anchors.add(heading[1].toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-'));
  }
  return anchors;
}

// ---------------------------------------------------------------------------------------------

describe('deploy/: every YAML file parses, every Kubernetes object is well-formed', () => {
  it('parses each document of each file', async () => {
    const files = await yamlFilesUnder(DEPLOY);
    expect(files.map((f) => relative(DEPLOY, f))).toEqual(expect.arrayContaining(['prometheus/alerts.yaml', 'kubernetes/deployment.yaml']));
    for (const file of files) {
      for (const doc of parseAllDocuments(await readFile(file, 'utf8'))) {
        expect(doc.errors.map((e) => `${relative(ROOT, file)}: ${e.message}`)).toEqual([]);
        expect(doc.warnings.map((e) => `${relative(ROOT, file)}: ${e.message}`)).toEqual([]);
      }
    }
  });

  it('gives every Kubernetes object an apiVersion, a kind and a name, and lists every file in the kustomization', async () => {
    const docs = await kubernetesDocs();
    for (const doc of docs) {
      expect(doc.body.apiVersion, `${relative(ROOT, doc.file)} ${doc.kind}`).toEqual(expect.any(String));
      expect(doc.name, `${relative(ROOT, doc.file)} ${doc.kind}`).not.toBe('');
    }
    const kinds = new Set(docs.map((d) => d.kind));
    for (const kind of ['ConfigMap', 'Deployment', 'Service', 'PodDisruptionBudget', 'HorizontalPodAutoscaler']) expect(kinds).toContain(kind);

    const kustomization = find(docs, 'Kustomization', 'kustomization');
    const listed = arr(kustomization.body.resources, 'resources').map((r) => str(r, 'resource')).sort();
    const present = (await yamlFilesUnder(K8S)).map((f) => relative(K8S, f)).filter((f) => f !== 'kustomization.yaml').sort();
    expect(listed).toEqual(present);
  });
});

describe('deploy/kubernetes: the manifests match the gateway they run', () => {
  let docs: K8sDoc[];
  let config: ConfigMapConfig;

  beforeAll(async () => {
    docs = await kubernetesDocs();
    config = await configMapConfig(docs);
  });

  afterAll(async () => {
    if (config !== undefined) await rm(config.dir, { recursive: true, force: true });
  });

  it("the ConfigMap's gateway.yaml and routes.yaml pass `gateway validate`", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runValidate(config.gatewayFile, { stdout: (l) => out.push(l), stderr: (l) => err.push(l) }, {});
    expect(err).toEqual([]);
    expect(code).toBe(0);
    expect(out[0]).toMatch(/^ok: \d+ routes?, \d+ upstreams?, version /);
    // In a pod, the kubelet and Prometheus reach the admin port on the pod IP, never on loopback.
    expect(config.gateway.admin.address).toBe('0.0.0.0');
    expect(config.gateway.workers).toBe(1);
    expect(config.gateway.pidFile).toBeNull();
  });

  it('runs the gateway with --watch on the ConfigMap mounted as a folder (no subPath)', () => {
    const deployment = find(docs, 'Deployment', 'gateway');
    const container = firstContainer(deployment);
    const args = arr(container.args ?? [], 'args').map((a) => str(a, 'arg'));
    const configPath = args[args.indexOf('--config') + 1];
    expect(args).toContain('--watch');
    expect(configPath).toBe('/etc/gateway/gateway.yaml');

    const volume = arr(podSpec(deployment).volumes, 'volumes').map((v) => obj(v, 'volume')).find((v) => isObj(v.configMap) && v.configMap.name === 'gateway-config');
    expect(volume).toBeDefined();
    const mount = arr(container.volumeMounts, 'volumeMounts').map((m) => obj(m, 'volumeMount')).find((m) => m.name === volume?.name);
    expect(mount).toBeDefined();
    // A subPath mount is a copy the kubelet never updates: --watch would never see an edit.
    expect(mount?.subPath).toBeUndefined();
    expect(mount?.mountPath).toBe(dirname(configPath ?? ''));
    expect(mount?.readOnly).toBe(true);
  });

  it("probes the admin port on /readyz and /healthz, and exposes the listeners' ports", () => {
    const container = firstContainer(find(docs, 'Deployment', 'gateway'));
    const readiness = obj(container.readinessProbe, 'readinessProbe');
    const liveness = obj(container.livenessProbe, 'livenessProbe');
    expect(at(readiness, 'httpGet.path')).toBe('/readyz');
    expect(at(liveness, 'httpGet.path')).toBe('/healthz');
    for (const probe of [readiness, liveness]) expect(portNumber(container, at(probe, 'httpGet.port'))).toBe(config.gateway.admin.port);

    const containerPorts = arr(container.ports, 'ports').map((p) => num(obj(p, 'port').containerPort, 'containerPort')).sort();
    const gatewayPorts = [...config.gateway.listeners.map((l) => l.port), config.gateway.admin.port].sort();
    expect(containerPorts).toEqual(gatewayPorts);
  });

  it('is scraped on the admin port at /metrics', () => {
    const annotations = obj(at(find(docs, 'Deployment', 'gateway').body, 'spec.template.metadata.annotations'), 'pod annotations');
    expect(annotations['prometheus.io/scrape']).toBe('true');
    expect(annotations['prometheus.io/port']).toBe(String(config.gateway.admin.port));
    expect(annotations['prometheus.io/path']).toBe('/metrics');
  });

  it('sleeps in preStop, then leaves the drain its shutdownTimeout before the kubelet kills it', () => {
    const deployment = find(docs, 'Deployment', 'gateway');
    const preStop = obj(at(firstContainer(deployment), 'lifecycle.preStop'), 'preStop');
    const command = isObj(preStop.exec) ? arr(preStop.exec.command, 'preStop command').map((c) => str(c, 'command')) : [];
    const sleepSeconds = isObj(preStop.sleep) ? num(preStop.sleep.seconds, 'preStop sleep') : command[0] === 'sleep' ? Number(command[1]) : Number.NaN;
    expect(sleepSeconds).toBeGreaterThan(0);
    const grace = num(podSpec(deployment).terminationGracePeriodSeconds, 'terminationGracePeriodSeconds');
    expect(grace).toBeGreaterThan(sleepSeconds + config.gateway.limits.shutdownTimeoutMs / 1000);
  });

  it('runs as non-root with a read-only root filesystem, no capabilities, and resources set', () => {
    const deployment = find(docs, 'Deployment', 'gateway');
    const container = firstContainer(deployment);
    expect(at(podSpec(deployment), 'securityContext.runAsNonRoot')).toBe(true);
    expect(at(container, 'securityContext.readOnlyRootFilesystem')).toBe(true);
    expect(at(container, 'securityContext.allowPrivilegeEscalation')).toBe(false);
    expect(at(container, 'securityContext.capabilities.drop')).toEqual(['ALL']);
    expect(obj(at(container, 'resources.requests'), 'requests')).toHaveProperty('cpu');
    expect(obj(at(container, 'resources.requests'), 'requests')).toHaveProperty('memory');
    expect(obj(at(container, 'resources.limits'), 'limits')).toHaveProperty('memory');
  });

  it('the Service selects the gateway pods and targets public listener ports only', () => {
    const deployment = find(docs, 'Deployment', 'gateway');
    const container = firstContainer(deployment);
    const service = find(docs, 'Service', 'gateway');
    const podLabels = obj(at(deployment.body, 'spec.template.metadata.labels'), 'pod labels');
    expect(matches(obj(at(service.body, 'spec.selector'), 'selector'), podLabels)).toBe(true);
    const listenerPorts = config.gateway.listeners.map((l) => l.port);
    const targets = arr(at(service.body, 'spec.ports'), 'service ports').map((p) => portNumber(container, obj(p, 'service port').targetPort));
    expect(targets.length).toBeGreaterThan(0);
    for (const target of targets) expect(listenerPorts).toContain(target);
    expect(targets).not.toContain(config.gateway.admin.port);
  });

  it('the PodDisruptionBudget, HorizontalPodAutoscaler and NetworkPolicy point at the gateway', () => {
    const deployment = find(docs, 'Deployment', 'gateway');
    const podLabels = obj(at(deployment.body, 'spec.template.metadata.labels'), 'pod labels');
    expect(matches(obj(at(find(docs, 'PodDisruptionBudget', 'gateway').body, 'spec.selector.matchLabels'), 'pdb selector'), podLabels)).toBe(true);
    const hpa = find(docs, 'HorizontalPodAutoscaler', 'gateway');
    expect(hpa.body.apiVersion).toBe('autoscaling/v2');
    expect(at(hpa.body, 'spec.scaleTargetRef')).toMatchObject({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.name });
    expect(num(at(hpa.body, 'spec.minReplicas'), 'minReplicas')).toBeGreaterThanOrEqual(2);
    // The HPA owns the replica count: a fixed one would be reset on every apply.
    expect(obj(deployment.body.spec, 'spec').replicas).toBeUndefined();

    const policy = find(docs, 'NetworkPolicy', 'gateway');
    expect(matches(obj(at(policy.body, 'spec.podSelector.matchLabels'), 'policy selector'), podLabels)).toBe(true);
    const rules = arr(at(policy.body, 'spec.ingress'), 'ingress').map((r) => obj(r, 'rule'));
    const open = rules.filter((r) => r.from === undefined).flatMap((r) => arr(r.ports, 'ports').map((p) => num(obj(p, 'port').port, 'port')));
    expect(open).toEqual(config.gateway.listeners.map((l) => l.port));
  });

  it("DNS discovery resolves the example headless Service, on the port its pods serve", () => {
    const namespace = str(find(docs, 'Kustomization', 'kustomization').body.namespace, 'kustomization namespace');
    const discovered = config.routes.upstreams.filter((u) => u.discovery !== null);
    expect(discovered.length).toBeGreaterThan(0);
    expect(config.routes.upstreams.some((u) => u.discovery === null)).toBe(true);
    for (const upstream of discovered) {
      const dns = upstream.discovery?.dns;
      const match = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local$/.exec(dns?.name ?? '');
      expect(match, `upstream ${upstream.name}: ${dns?.name}`).not.toBeNull();
      expect(match?.[2]).toBe(namespace);
      const service = find(docs, 'Service', match?.[1] ?? '');
      expect(at(service.body, 'spec.clusterIP')).toBe('None');
      const backend = docs.find((d) => d.kind === 'Deployment' && matches(obj(at(service.body, 'spec.selector'), 'selector'), obj(at(d.body, 'spec.template.metadata.labels'), 'labels')));
      expect(backend, `a Deployment behind Service ${service.name}`).toBeDefined();
      // A headless Service's A records are pod IPs: the port is the pods' own, not the Service's.
      const podPorts = arr(at(service.body, 'spec.ports'), 'ports').map((p) => portNumber(firstContainer(backend as K8sDoc), obj(p, 'port').targetPort ?? obj(p, 'port').port));
      expect(podPorts).toContain(dns?.port);
    }
  });

  it('the probe and scrape paths are served by the real admin listener', async () => {
    const deployment = find(docs, 'Deployment', 'gateway');
    const container = firstContainer(deployment);
    const paths = [
      str(at(container, 'readinessProbe.httpGet.path'), 'readiness path'),
      str(at(container, 'livenessProbe.httpGet.path'), 'liveness path'),
      str(obj(at(deployment.body, 'spec.template.metadata.annotations'), 'pod annotations')['prometheus.io/path'], 'metrics path'),
    ];
    const running = await startGateway(simpleRoutes(['http://127.0.0.1:9']));
    try {
      for (const path of paths) {
        const response = await fetch(`${running.adminUrl}${path}`);
        expect(response.status, path).toBe(200);
        await response.arrayBuffer();
      }
    } finally {
      await running.stop();
    }
  });
});

describe('deploy/prometheus and deploy/grafana query only metrics the gateway exports', () => {
  let metrics: Map<string, ExportedMetric>;
  let series: Map<string, ReadonlySet<string>>;

  beforeAll(async () => {
    metrics = await registryMetrics();
    series = seriesNames(metrics);
  });

  it("reads the gateway's registry, prom-client's default process metrics included", () => {
    for (const name of ['gateway_requests_total', 'gateway_ratelimit_store_up', 'process_cpu_seconds_total', 'nodejs_eventloop_lag_p99_seconds']) expect(metrics.has(name), name).toBe(true);
    expect(series.has('gateway_request_duration_seconds_bucket')).toBe(true);
    expect(series.get('gateway_requests_total')).toEqual(new Set(['route', 'method', 'status']));
    // The checker itself must catch what it is here for.
    expect(promqlProblems('rate(gateway_request_total[5m])', series)).toEqual(['unknown metric gateway_request_total']);
    expect(promqlProblems('gateway_request_duration_seconds', series)).toEqual(['unknown metric gateway_request_duration_seconds']);
    expect(promqlProblems('gateway_requests_total{upstream="a"}', series)).toEqual(['gateway_requests_total has no label upstream']);
    expect(promqlProblems('sum by (reason) (gateway_requests_total)', series)).toEqual(['no metric of the expression has label reason']);
    expect(promqlProblems('label_values(gateway_requests_total, policy)', series)).toEqual(['label_values: gateway_requests_total has no label policy']);
  });

  it('alerts.yaml: every expression is valid against the registry, every rule is complete', async () => {
    const rules = await alertRules();
    const names = rules.map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
    const required: Record<string, RegExp> = {
      'high 5xx ratio': /gateway_requests_total\{[^}]*status=~"5\.\."/,
      'all endpoints of a pool ejected': /gateway_upstream_endpoints\{state="healthy"\}/,
      'reload failures': /gateway_config_reloads_total\{result="failure"\}/,
      'Redis store down': /gateway_ratelimit_store_up\b/,
      'Redis store errors': /gateway_ratelimit_store_errors_total\b/,
      'JWKS fetch failures': /gateway_jwks_fetches_total\{result="failure"\}/,
    };
    for (const [what, pattern] of Object.entries(required)) expect(rules.some((r) => pattern.test(r.expr)), what).toBe(true);
    for (const { alert, expr, rule } of rules) {
      expect(promqlProblems(expr, series), alert).toEqual([]);
      expect(rule.for, alert).toMatch(/^\d+[smh]$/);
      expect(at(rule, 'labels.severity'), alert).toMatch(/^(critical|warning|info)$/);
      for (const key of ['summary', 'description', 'runbook_url']) expect(at(rule, `annotations.${key}`), `${alert} ${key}`).toEqual(expect.any(String));
    }
  });

  it('gateway-dashboard.json: every query is valid against the registry', async () => {
    const dashboard = obj(JSON.parse(await readFile(join(DEPLOY, 'grafana', 'gateway-dashboard.json'), 'utf8')), 'dashboard');
    expect(num(dashboard.schemaVersion, 'schemaVersion')).toBeGreaterThanOrEqual(36);
    const queries = dashboardQueries(dashboard);
    expect(queries.length).toBeGreaterThan(20);
    for (const { where, query } of queries) expect(promqlProblems(query, series), where).toEqual([]);

    const all = queries.map((q) => q.query).join('\n');
    const shown = [
      'gateway_requests_total', 'gateway_request_duration_seconds_bucket', 'gateway_upstream_requests_total',
      'gateway_upstream_request_duration_seconds_bucket', 'gateway_upstream_endpoints', 'gateway_outlier_ejections_total',
      'gateway_ratelimit_decisions_total', 'gateway_config_reloads_total', 'gateway_config_last_reload_success_timestamp_seconds',
      'gateway_jwt_verifications_total', 'nodejs_eventloop_lag_p99_seconds',
    ];
    for (const name of shown) expect(all, name).toMatch(new RegExp(`\\b${name}\\b`));
    const variables = arr(at(dashboard, 'templating.list'), 'templating').map((v) => str(obj(v, 'variable').name, 'variable name'));
    expect(variables).toEqual(expect.arrayContaining(['route', 'upstream']));
  });
});

describe('docs/operations.md', () => {
  it('lists exactly the gateway_* metrics of the registry, with their type and labels', async () => {
    const metrics = await registryMetrics();
    const reference = section(await operationsDoc(), 'Metrics reference');
    const rows = new Map<string, { type: string; labels: string[] }>();
    for (const line of reference.split('\n')) {
      const cells = line.split('|').map((c) => c.trim());
      const name = /^`(gateway_[a-z0-9_]+)`$/.exec(cells[1] ?? '')?.[1];
      if (name === undefined) continue;
      expect(rows.has(name), `${name} listed twice`).toBe(false);
      rows.set(name, { type: cells[2] ?? '', labels: [...(cells[3] ?? '').matchAll(/`([a-z_]+)`/g)].map((m) => m[1] ?? '') });
    }
    const exported = [...metrics.values()].filter((m) => m.name.startsWith('gateway_'));
    expect([...rows.keys()].sort()).toEqual(exported.map((m) => m.name).sort());
    for (const m of exported) {
      expect(rows.get(m.name)?.type, m.name).toBe(m.type);
      expect(rows.get(m.name)?.labels.sort(), m.name).toEqual([...m.labels].sort());
    }
    // The default process metrics are there too, and any the page names are real.
    const series = seriesNames(metrics);
    for (const name of ['process_cpu_seconds_total', 'nodejs_eventloop_lag_p99_seconds']) expect(reference).toContain(name);
    for (const name of reference.match(/\b(?:process|nodejs)_[a-z0-9_]+\b/g) ?? []) expect(series.has(name), name).toBe(true);
  });

  it("has a runbook section for every alert, at its runbook_url's anchor", async () => {
    const doc = await operationsDoc();
    const anchors = headingAnchors(doc);
    const runbook = section(doc, 'Alert runbook');
    for (const { alert, rule } of await alertRules()) {
      const url = str(at(rule, 'annotations.runbook_url'), `${alert} runbook_url`);
      const anchor = /^docs\/operations\.md#([a-z0-9-]+)$/.exec(url)?.[1];
      expect(anchor, `${alert}: ${url}`).toBe(alert.toLowerCase());
      expect(anchors.has(anchor ?? ''), `${alert}: #${anchor}`).toBe(true);
      expect(runbook).toContain(`### ${alert}\n`);
    }
  });

  it('keeps its sections', async () => {
    const doc = await operationsDoc();
    for (const heading of ['Deploying', 'Reloading', 'Scaling out', 'Multi-core (workers)', 'Metrics reference', 'Alert runbook']) expect(doc).toContain(`\n## ${heading}\n`);
  });
});

describe('Dockerfile', () => {
  interface Stage {
    readonly from: string;
    readonly name: string | null;
    readonly instructions: { readonly op: string; readonly args: string }[];
  }

  async function stages(): Promise<Stage[]> {
    const text = (await readFile(join(ROOT, 'Dockerfile'), 'utf8')).replace(/\\\n/g, ' ');
    const result: { from: string; name: string | null; instructions: { op: string; args: string }[] }[] = [];
    for (const line of text.split('\n')) {
      const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
      if (m === null || line.trimStart().startsWith('#')) continue;
      const op = (m[1] ?? '').toUpperCase();
      const args = (m[2] ?? '').trim();
      if (op === 'FROM') {
        const from = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?/i.exec(args);
        result.push({ from: from?.[1] ?? '', name: from?.[2] ?? null, instructions: [] });
      } else {
        result.at(-1)?.instructions.push({ op, args });
      }
    }
    return result;
  }

  it('is multi-stage; the runtime stage installs production dependencies only, copies dist/ and runs as non-root', async () => {
    const all = await stages();
    expect(all.length).toBeGreaterThanOrEqual(2);
    const runtime = all.at(-1) as Stage;
    const earlier = new Set(all.slice(0, -1).flatMap((s) => (s.name === null ? [] : [s.name])));
    const ops = (op: string): string[] => runtime.instructions.filter((i) => i.op === op).map((i) => i.args);

    const installs = ops('RUN').filter((r) => /\bnpm (ci|install)\b/.test(r));
    expect(installs.length).toBeGreaterThan(0);
    for (const install of installs) expect(install).toMatch(/--omit=dev\b/);

    const fromBuild = ops('COPY').filter((c) => {
      const stage = /--from=(\S+)/.exec(c)?.[1];
      return stage !== undefined && earlier.has(stage) && /\bdist\//.test(c);
    });
    expect(fromBuild.join('\n')).toMatch(/dist\/src\b/);
    expect(fromBuild.join('\n')).toMatch(/dist\/plugins\b/);

    const users = ops('USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^(root|0)(:|$)/);

    const pkg = obj(JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')), 'package.json');
    expect(ops('ENTRYPOINT').join(' ')).toContain(str(at(pkg, 'bin.gateway'), 'bin.gateway'));
  });

  it("exposes the shipped config's ports and keeps dev files out of the build context", async () => {
    const shipped = await loadGatewayConfig(join(ROOT, 'config', 'gateway.yaml'), {});
    const runtime = (await stages()).at(-1) as Stage;
    const exposed = runtime.instructions.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => Number.parseInt(p, 10));
    for (const port of [...shipped.listeners.map((l) => l.port), shipped.admin.port]) expect(exposed).toContain(port);
    const ignored = (await readFile(join(ROOT, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim());
    for (const entry of ['**/node_modules', 'dist', 'config/tls']) expect(ignored).toContain(entry);
  });
});
