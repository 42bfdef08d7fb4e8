// routes.yaml `upstreams` (already schema-valid) → UpstreamConfig[]: defaults applied, units read,
// target URLs made canonical origins, and the rules spanning fields checked at their positions.

import {
  DNS_DISCOVERY_DEFAULTS,
  HEALTH_CHECK_DEFAULTS,
  OUTLIER_DETECTION_DEFAULTS,
  RETRY_DEFAULTS,
  SLOW_START_DEFAULTS,
  SUCCESS_RATE_DEFAULTS,
  TARGET_DEFAULTS,
  UPSTREAM_DEFAULTS,
  UPSTREAM_TIMEOUT_DEFAULTS,
} from './defaults.js';
import type { IssueCollector } from './issues.js';
import { checkDnsName, normalizeDnsServer, normalizeTargetUrl } from './normalize.js';
import type { UpstreamEntry } from './schema.js';
import { formatFieldPath, type FieldPath } from './source.js';
import type {
  DnsDiscoveryConfig,
  HealthCheckConfig,
  OutlierDetectionConfig,
  RetryCondition,
  RetryConfig,
  TargetConfig,
  UpstreamConfig,
} from './types.js';
import { parseDuration, parsePercent } from './units.js';

export function compileUpstream(name: string, entry: UpstreamEntry, issues: IssueCollector): UpstreamConfig {
  const path: FieldPath = ['upstreams', name];
  if ((entry.targets === undefined) === (entry.discovery === undefined)) {
    issues.add(path, 'set exactly one of targets and discovery');
  }
  const balancer = entry.balancer ?? UPSTREAM_DEFAULTS.balancer;
  const hashOn = entry.hashOn ?? UPSTREAM_DEFAULTS.hashOn;
  if (balancer === 'consistent-hash' && hashOn === null) {
    issues.add([...path, 'balancer'], 'the consistent-hash balancer requires hashOn');
  } else if (balancer !== 'consistent-hash' && hashOn !== null) {
    // Otherwise the key would be silently ignored.
    issues.add([...path, 'hashOn'], `hashOn is only used by the consistent-hash balancer, not ${balancer}`);
  }
  if (entry.slowStart && balancer === 'consistent-hash') {
    // Turning a warming endpoint's requests away would send its keys elsewhere and back.
    issues.add([...path, 'slowStart'], 'slowStart does not apply to the consistent-hash balancer (it would move keys)');
  }
  const timeouts = entry.timeouts ?? {};
  return {
    name,
    targets: entry.targets === undefined ? null : compileTargets(entry.targets, [...path, 'targets'], issues),
    discovery: entry.discovery === undefined ? null : compileDiscovery(entry.discovery, [...path, 'discovery'], issues),
    balancer,
    hashOn,
    outlierDetection: compileOutlierDetection(entry.outlierDetection, [...path, 'outlierDetection'], issues),
    healthCheck: entry.healthCheck ? compileHealthCheck(entry.healthCheck) : null,
    panicThresholdPercent: parsePercent(entry.panicThreshold ?? UPSTREAM_DEFAULTS.panicThreshold),
    timeouts: {
      connectMs: parseDuration(timeouts.connect ?? UPSTREAM_TIMEOUT_DEFAULTS.connect),
      requestMs: parseDuration(timeouts.request ?? UPSTREAM_TIMEOUT_DEFAULTS.request),
    },
    retries: compileRetries(entry.retries),
    maxConnectionsPerEndpoint: entry.maxConnectionsPerEndpoint ?? UPSTREAM_DEFAULTS.maxConnectionsPerEndpoint,
    maxPendingRequests: entry.maxPendingRequests ?? UPSTREAM_DEFAULTS.maxPendingRequests,
    slowStart: entry.slowStart
      ? {
          windowMs: parseDuration(entry.slowStart.window ?? SLOW_START_DEFAULTS.window),
          aggression: entry.slowStart.aggression ?? SLOW_START_DEFAULTS.aggression,
          minWeightPercent: parsePercent(entry.slowStart.minWeight ?? SLOW_START_DEFAULTS.minWeight),
        }
      : null,
  };
}

function compileTargets(entries: NonNullable<UpstreamEntry['targets']>, path: FieldPath, issues: IssueCollector): TargetConfig[] {
  const seen = new Map<string, number>();
  return entries.map((target, i) => {
    const url = issues.value([...path, i, 'url'], normalizeTargetUrl(target.url), target.url);
    // An endpoint is identified by host:port; two entries for one endpoint would share its state.
    const first = seen.get(url);
    if (first !== undefined) issues.add([...path, i, 'url'], `duplicate target ${url} (also ${formatFieldPath([...path, first])})`);
    else seen.set(url, i);
    return { url, weight: target.weight ?? TARGET_DEFAULTS.weight };
  });
}

function compileDiscovery(raw: NonNullable<UpstreamEntry['discovery']>, path: FieldPath, issues: IssueCollector): DnsDiscoveryConfig {
  const type = raw.dns.type ?? DNS_DISCOVERY_DEFAULTS.type;
  if (type === 'SRV' && raw.dns.port !== undefined) {
    issues.add([...path, 'dns', 'port'], 'port is not used with type SRV: the records carry it');
  } else if (type !== 'SRV' && raw.dns.port === undefined) {
    issues.add([...path, 'dns'], `missing required field "port" (type ${type} records carry no port)`);
  }
  const minRefresh = raw.minRefresh ?? DNS_DISCOVERY_DEFAULTS.minRefresh;
  const maxRefresh = raw.maxRefresh ?? DNS_DISCOVERY_DEFAULTS.maxRefresh;
  const compiled: DnsDiscoveryConfig = {
    dns: { name: issues.value([...path, 'dns', 'name'], checkDnsName(raw.dns.name), raw.dns.name), type, port: raw.dns.port ?? null },
    server: raw.server ? issues.value([...path, 'server'], normalizeDnsServer(raw.server), raw.server) : null,
    minRefreshMs: parseDuration(minRefresh),
    maxRefreshMs: parseDuration(maxRefresh),
  };
  if (compiled.minRefreshMs > compiled.maxRefreshMs) issues.add([...path, 'minRefresh'], `must not exceed maxRefresh (${maxRefresh})`);
  return compiled;
}

function compileOutlierDetection(
  raw: UpstreamEntry['outlierDetection'],
  path: FieldPath,
  issues: IssueCollector,
): OutlierDetectionConfig | null {
  if (raw === 'off') return null;
  const settings = raw ?? {};
  const maxEjectionTime = settings.maxEjectionTime ?? OUTLIER_DETECTION_DEFAULTS.maxEjectionTime;
  const compiled: OutlierDetectionConfig = {
    consecutive5xx: settings.consecutive5xx ?? OUTLIER_DETECTION_DEFAULTS.consecutive5xx,
    consecutiveGatewayFailures: settings.consecutiveGatewayFailures ?? OUTLIER_DETECTION_DEFAULTS.consecutiveGatewayFailures,
    intervalMs: parseDuration(settings.interval ?? OUTLIER_DETECTION_DEFAULTS.interval),
    baseEjectionTimeMs: parseDuration(settings.baseEjectionTime ?? OUTLIER_DETECTION_DEFAULTS.baseEjectionTime),
    maxEjectionTimeMs: parseDuration(maxEjectionTime),
    maxEjectionPercent: parsePercent(settings.maxEjectionPercent ?? OUTLIER_DETECTION_DEFAULTS.maxEjectionPercent),
    successRate: settings.successRate
      ? {
          minimumHosts: settings.successRate.minimumHosts ?? SUCCESS_RATE_DEFAULTS.minimumHosts,
          requestVolume: settings.successRate.requestVolume ?? SUCCESS_RATE_DEFAULTS.requestVolume,
          stdevFactor: settings.successRate.stdevFactor ?? SUCCESS_RATE_DEFAULTS.stdevFactor,
        }
      : null,
  };
  if (compiled.baseEjectionTimeMs > compiled.maxEjectionTimeMs) {
    issues.add([...path, 'baseEjectionTime'], `must not exceed maxEjectionTime (${maxEjectionTime})`);
  }
  return compiled;
}

function compileHealthCheck(raw: NonNullable<UpstreamEntry['healthCheck']>): HealthCheckConfig {
  return {
    path: raw.path ?? HEALTH_CHECK_DEFAULTS.path,
    intervalMs: parseDuration(raw.interval ?? HEALTH_CHECK_DEFAULTS.interval),
    timeoutMs: parseDuration(raw.timeout ?? HEALTH_CHECK_DEFAULTS.timeout),
    unhealthyThreshold: raw.unhealthyThreshold ?? HEALTH_CHECK_DEFAULTS.unhealthyThreshold,
    healthyThreshold: raw.healthyThreshold ?? HEALTH_CHECK_DEFAULTS.healthyThreshold,
  };
}

function compileRetries(raw: UpstreamEntry['retries']): RetryConfig {
  const settings = raw ?? {};
  // YAML reads `502` as a number and `5xx` as a string; both spellings name one condition.
  const on = [...new Set((settings.on ?? RETRY_DEFAULTS.on).map((condition) => String(condition) as RetryCondition))];
  return {
    attempts: settings.attempts ?? RETRY_DEFAULTS.attempts,
    on,
    budgetPercent: parsePercent(settings.budget ?? RETRY_DEFAULTS.budget),
    perTryTimeoutMs: settings.perTryTimeout === undefined ? null : parseDuration(settings.perTryTimeout),
  };
}
