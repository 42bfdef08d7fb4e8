// gateway.yaml (already schema-valid) → GatewayConfig: defaults applied, units read, paths made
// absolute, and the rules that span fields checked, each reported at its own position.

import { dirname, resolve } from 'node:path';
import type { GatewayConfig, LimitsConfig, ListenerConfig, ListenerTlsConfig, RedisConfig } from './types.js';
import { ADMIN_DEFAULTS, GATEWAY_DEFAULTS, LIMITS_DEFAULTS, LISTENER_DEFAULTS, LISTENER_TLS_DEFAULTS, LOG_DEFAULTS, REDIS_DEFAULTS } from './defaults.js';
import type { IssueCollector } from './issues.js';
import { checkIpOrCidr, checkListenAddress, checkRedisUrl } from './normalize.js';
import type { GatewayFile, ListenerEntry } from './schema.js';
import { formatFieldPath, type FieldPath } from './source.js';
import { parseDuration, parsePercent, parseSize } from './units.js';

export function compileGateway(raw: GatewayFile, file: string, issues: IssueCollector): GatewayConfig {
  const folder = dirname(file);
  const listeners = raw.listeners.map((entry, i) => compileListener(entry, ['listeners', i], folder, issues));
  const admin = {
    address: issues.value(['admin', 'address'], checkListenAddress(raw.admin?.address ?? ADMIN_DEFAULTS.address), ADMIN_DEFAULTS.address),
    port: raw.admin?.port ?? ADMIN_DEFAULTS.port,
  };
  checkListenersApart(raw, listeners, issues);

  const redis = raw.redis ? compileRedis(raw.redis, issues) : null;
  const trustedProxies = (raw.trustedProxies ?? GATEWAY_DEFAULTS.trustedProxies).map((entry, i) =>
    issues.value(['trustedProxies', i], checkIpOrCidr(entry), entry),
  );
  const limits = compileLimits(raw, issues);

  return {
    file,
    listeners,
    admin,
    routesFile: resolve(folder, raw.routesFile ?? GATEWAY_DEFAULTS.routesFile),
    redis,
    workers: raw.workers ?? GATEWAY_DEFAULTS.workers,
    trustedProxies,
    limits,
    log: {
      level: raw.log?.level ?? LOG_DEFAULTS.level,
      accessLog: raw.log?.accessLog ?? LOG_DEFAULTS.accessLog,
      accessLogSamplePercent: parsePercent(raw.log?.accessLogSample ?? LOG_DEFAULTS.accessLogSample),
    },
    pidFile: raw.pidFile ? resolve(folder, raw.pidFile) : GATEWAY_DEFAULTS.pidFile,
  };
}

function compileListener(entry: ListenerEntry, path: FieldPath, folder: string, issues: IssueCollector): ListenerConfig {
  const address = entry.address ?? LISTENER_DEFAULTS.address;
  let tls: ListenerTlsConfig | null = null;
  if (entry.tls) {
    tls = {
      certificates: entry.tls.certificates.map((pair) => ({ cert: resolve(folder, pair.cert), key: resolve(folder, pair.key) })),
      minVersion: entry.tls.minVersion ?? LISTENER_TLS_DEFAULTS.minVersion,
      http2: entry.tls.http2 ?? LISTENER_TLS_DEFAULTS.http2,
      clientCa: entry.tls.clientCa ? resolve(folder, entry.tls.clientCa) : LISTENER_TLS_DEFAULTS.clientCa,
    };
  }
  return {
    name: entry.name,
    address: issues.value([...path, 'address'], checkListenAddress(address), address),
    port: entry.port,
    redirectToHttps: entry.redirectToHttps ?? LISTENER_DEFAULTS.redirectToHttps,
    tls,
  };
}

/** Names and ports must be unique: two listeners on one port would fail only at bind time. */
function checkListenersApart(raw: GatewayFile, listeners: readonly ListenerConfig[], issues: IssueCollector): void {
  const names = new Map<string, number>();
  const ports = new Map<number, string>();
  ports.set(raw.admin?.port ?? ADMIN_DEFAULTS.port, 'the admin listener');
  const firstTls = listeners.findIndex((listener) => listener.tls !== null);
  listeners.forEach((listener, i) => {
    const seen = names.get(listener.name);
    if (seen !== undefined) issues.add(['listeners', i, 'name'], `duplicate listener name "${listener.name}" (also ${formatFieldPath(['listeners', seen])})`);
    else names.set(listener.name, i);
    // Port 0 asks the OS for a free port: several may share it.
    if (listener.port !== 0) {
      const owner = ports.get(listener.port);
      if (owner !== undefined) issues.add(['listeners', i, 'port'], `port ${listener.port} is already used by ${owner}`);
      else ports.set(listener.port, formatFieldPath(['listeners', i]));
    }
    if (listener.redirectToHttps && listener.tls !== null) {
      issues.add(['listeners', i, 'redirectToHttps'], 'a TLS listener cannot redirect to HTTPS: it would redirect to itself');
    } else if (listener.redirectToHttps && firstTls < 0) {
      issues.add(['listeners', i, 'redirectToHttps'], 'needs a listener with tls to redirect to');
    }
  });
}

function compileRedis(raw: NonNullable<GatewayFile['redis']>, issues: IssueCollector): RedisConfig {
  if ((raw.url === undefined) === (raw.cluster === undefined)) issues.add(['redis'], 'set exactly one of url and cluster');
  return {
    url: raw.url === undefined ? null : issues.value(['redis', 'url'], checkRedisUrl(raw.url), raw.url),
    cluster: raw.cluster === undefined ? null : raw.cluster.map((url, i) => issues.value(['redis', 'cluster', i], checkRedisUrl(url), url)),
    keyPrefix: raw.keyPrefix ?? REDIS_DEFAULTS.keyPrefix,
    commandTimeoutMs: parseDuration(raw.commandTimeout ?? REDIS_DEFAULTS.commandTimeout),
    failureMode: raw.failureMode ?? REDIS_DEFAULTS.failureMode,
  };
}

function compileLimits(raw: GatewayFile, issues: IssueCollector): LimitsConfig {
  const limits = raw.limits ?? {};
  const requestTimeout = limits.requestTimeout ?? LIMITS_DEFAULTS.requestTimeout;
  const compiled: LimitsConfig = {
    maxHeaderSize: parseSize(limits.maxHeaderSize ?? LIMITS_DEFAULTS.maxHeaderSize),
    maxHeaderCount: limits.maxHeaderCount ?? LIMITS_DEFAULTS.maxHeaderCount,
    bodyLimit: parseSize(limits.bodyLimit ?? LIMITS_DEFAULTS.bodyLimit),
    headersTimeoutMs: parseDuration(limits.headersTimeout ?? LIMITS_DEFAULTS.headersTimeout),
    requestTimeoutMs: parseDuration(requestTimeout),
    keepAliveTimeoutMs: parseDuration(limits.keepAliveTimeout ?? LIMITS_DEFAULTS.keepAliveTimeout),
    shutdownTimeoutMs: parseDuration(limits.shutdownTimeout ?? LIMITS_DEFAULTS.shutdownTimeout),
  };
  // Node refuses to start a server whose head timeout outlasts its whole-request timeout.
  if (compiled.requestTimeoutMs > 0 && compiled.headersTimeoutMs > compiled.requestTimeoutMs) {
    issues.add(['limits', 'headersTimeout'], `must not exceed limits.requestTimeout (${requestTimeout})`);
  }
  return compiled;
}
