// The validated, immutable configuration model. The loader turns YAML/JSON files into these
// objects once (durations in milliseconds, sizes in bytes, paths absolute, defaults applied);
// everything downstream reads only these types and never sees raw YAML.

export type DurationMs = number;
export type Bytes = number;

export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

export interface CertificatePair {
  readonly cert: string; // absolute path
  readonly key: string; // absolute path
}

export interface ListenerTlsConfig {
  readonly certificates: readonly CertificatePair[];
  readonly minVersion: TlsVersion;
  readonly http2: boolean;
  readonly clientCa: string | null; // absolute path
}

export interface ListenerConfig {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly redirectToHttps: boolean;
  readonly tls: ListenerTlsConfig | null;
}

export interface AdminConfig {
  readonly address: string;
  readonly port: number;
}

export type RedisFailureMode = 'local' | 'open' | 'closed';

export interface RedisConfig {
  /** Exactly one of url / cluster is set. */
  readonly url: string | null;
  readonly cluster: readonly string[] | null;
  readonly keyPrefix: string;
  readonly commandTimeoutMs: DurationMs;
  readonly failureMode: RedisFailureMode;
}

export interface LimitsConfig {
  readonly maxHeaderSize: Bytes;
  /** More header fields than this: 431 (never silently dropped). */
  readonly maxHeaderCount: number;
  readonly bodyLimit: Bytes;
  readonly headersTimeoutMs: DurationMs;
  /** Whole request (headers + body) must arrive within this; guards against dripped bodies. */
  readonly requestTimeoutMs: DurationMs;
  readonly keepAliveTimeoutMs: DurationMs;
  readonly shutdownTimeoutMs: DurationMs;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface LogConfig {
  readonly level: LogLevel;
  readonly accessLog: boolean;
  /** 0..100: share of requests logged; 5xx are always logged. */
  readonly accessLogSamplePercent: number;
}

/** Static configuration: read once at start (`gateway.yaml`). */
export interface GatewayConfig {
  readonly file: string; // absolute path of gateway.yaml
  readonly listeners: readonly ListenerConfig[];
  readonly admin: AdminConfig;
  readonly routesFile: string; // absolute path
  readonly redis: RedisConfig | null;
  readonly workers: number | 'auto';
  readonly trustedProxies: readonly string[]; // CIDRs or single addresses
  readonly limits: LimitsConfig;
  readonly log: LogConfig;
  readonly pidFile: string | null; // absolute path
}

export type BalancerName =
  | 'round-robin'
  | 'weighted-round-robin'
  | 'least-request'
  | 'random'
  | 'peak-ewma'
  | 'consistent-hash';

export type RetryCondition = 'connect-failure' | 'reset' | 'timeout' | '5xx' | '502' | '503' | '504';

export interface TargetConfig {
  readonly url: string; // normalised origin, e.g. http://10.0.0.11:8080
  readonly weight: number;
}

export type DnsRecordType = 'A' | 'AAAA' | 'SRV';

export interface DnsDiscoveryConfig {
  readonly dns: { readonly name: string; readonly type: DnsRecordType; readonly port: number | null };
  readonly server: string | null;
  readonly minRefreshMs: DurationMs;
  readonly maxRefreshMs: DurationMs;
}

export interface OutlierDetectionConfig {
  readonly consecutive5xx: number;
  readonly consecutiveGatewayFailures: number;
  readonly intervalMs: DurationMs;
  readonly baseEjectionTimeMs: DurationMs;
  readonly maxEjectionTimeMs: DurationMs;
  readonly maxEjectionPercent: number; // 0..100
  readonly successRate: SuccessRateConfig | null; // null = off
}

export interface SuccessRateConfig {
  readonly minimumHosts: number;
  readonly requestVolume: number;
  readonly stdevFactor: number;
}

export interface HealthCheckConfig {
  readonly path: string;
  readonly intervalMs: DurationMs;
  readonly timeoutMs: DurationMs;
  readonly unhealthyThreshold: number;
  readonly healthyThreshold: number;
}

export interface UpstreamTimeouts {
  readonly connectMs: DurationMs;
  readonly requestMs: DurationMs;
}

export interface RetryConfig {
  readonly attempts: number;
  readonly on: readonly RetryCondition[];
  readonly budgetPercent: number; // 0..100
  /** Headers deadline of one attempt; null: only the request timeout bounds it. */
  readonly perTryTimeoutMs: DurationMs | null;
}

export interface UpstreamConfig {
  readonly name: string;
  /** Exactly one of targets / discovery is set. */
  readonly targets: readonly TargetConfig[] | null;
  readonly discovery: DnsDiscoveryConfig | null;
  readonly balancer: BalancerName;
  readonly hashOn: string | null;
  readonly outlierDetection: OutlierDetectionConfig | null; // null = off
  readonly healthCheck: HealthCheckConfig | null;
  readonly panicThresholdPercent: number; // 0..100
  readonly timeouts: UpstreamTimeouts;
  readonly retries: RetryConfig;
  readonly maxConnectionsPerEndpoint: number;
  readonly maxPendingRequests: number;
  readonly slowStart: SlowStartConfig | null; // null = off
}

export interface SlowStartConfig {
  readonly windowMs: DurationMs;
  readonly aggression: number;
  readonly minWeightPercent: number; // 0..100
}

export type JwtAlgorithm =
  | 'RS256' | 'RS384' | 'RS512'
  | 'PS256' | 'PS384' | 'PS512'
  | 'ES256' | 'ES384' | 'ES512'
  | 'EdDSA'
  | 'HS256' | 'HS384' | 'HS512';

export interface JwtProviderConfig {
  readonly name: string;
  readonly issuer: string;
  readonly audiences: readonly string[];
  /** Exactly one of jwksUri / jwksFile is set. */
  readonly jwksUri: string | null;
  readonly jwksFile: string | null; // absolute path
  readonly jwksCacheMaxAgeMs: DurationMs;
  readonly jwksRefetchCooldownMs: DurationMs;
  readonly algorithms: readonly JwtAlgorithm[];
  readonly clockSkewMs: DurationMs;
  /** claim name -> header name (lower-cased) */
  readonly forwardClaims: Readonly<Record<string, string>>;
}

/** One part of a rate-limit key: `ip`, `route`, `header:<name>` or `jwt:<claim>`. */
export type RateLimitKeyPart =
  | { readonly kind: 'ip' }
  | { readonly kind: 'route' }
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'jwt'; readonly claim: string };

export interface RateLimitPolicyConfig {
  readonly name: string;
  readonly key: readonly RateLimitKeyPart[];
  readonly limit: number;
  readonly windowMs: DurationMs;
  readonly burst: number;
}

export interface RouteAuthConfig {
  readonly jwt: string;
  readonly require: Readonly<Record<string, string | readonly string[]>>;
}

export type HeaderMatch =
  | { readonly kind: 'exact'; readonly value: string }
  | { readonly kind: 'present' }
  | { readonly kind: 'regex'; readonly pattern: string };

export interface RouteMatchConfig {
  readonly headers: Readonly<Record<string, HeaderMatch>>; // lower-cased names
  readonly query: Readonly<Record<string, string>>;
}

export interface WeightedUpstream {
  readonly upstream: string;
  readonly weight: number;
}

export interface HeaderRewriteConfig {
  readonly set: Readonly<Record<string, string>>; // lower-cased names
  readonly remove: readonly string[]; // lower-cased names
}

export interface CorsConfig {
  readonly origins: readonly string[];
  readonly methods: readonly string[];
  readonly headers: readonly string[];
  readonly credentials: boolean;
  readonly maxAgeMs: DurationMs;
}

export interface FaultConfig {
  readonly delay: { readonly percent: number; readonly durationMs: DurationMs } | null;
  readonly abort: { readonly percent: number; readonly status: number } | null;
}

export interface RouteConfig {
  readonly name: string;
  /** Position in the routes file: the last tie-breaker of route choice. */
  readonly index: number;
  readonly prefix: string; // normalised, no trailing slash except for "/"
  readonly host: string | null; // lower-cased, no trailing dot; may start with "*."
  readonly methods: readonly string[] | null; // upper-cased
  readonly match: RouteMatchConfig | null;
  /** Exactly one of upstream / split is set. */
  readonly upstream: string | null;
  readonly split: readonly WeightedUpstream[] | null;
  readonly stripPrefix: boolean;
  readonly rewritePrefix: string | null;
  readonly auth: RouteAuthConfig | null; // null = auth: none
  readonly rateLimit: readonly string[];
  readonly websocket: boolean;
  readonly timeouts: { readonly requestMs: DurationMs | null };
  readonly mirror: { readonly upstream: string; readonly percent: number } | null;
  readonly headers: { readonly request: HeaderRewriteConfig | null; readonly response: HeaderRewriteConfig | null };
  readonly cors: CorsConfig | null;
  readonly fault: FaultConfig | null;
}

/** Dynamic configuration: re-read on every reload (`routes.yaml`). */
export interface RoutesConfig {
  readonly file: string; // absolute path
  readonly upstreams: readonly UpstreamConfig[];
  readonly jwtProviders: readonly JwtProviderConfig[];
  readonly rateLimits: readonly RateLimitPolicyConfig[];
  readonly routes: readonly RouteConfig[];
}
