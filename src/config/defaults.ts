// Every configuration default, in one place, spelled as an operator would write it in YAML. The
// schema copies these into its `default` keywords and descriptions (so editors, docs and the
// loader agree), and the compile step feeds them through the same unit readers as written values.
// Where the SPEC shows a value without calling it a default, the SPEC's value is the default.

export const LISTENER_DEFAULTS = Object.freeze({
  address: '0.0.0.0',
  redirectToHttps: false,
} as const);

export const LISTENER_TLS_DEFAULTS = Object.freeze({
  minVersion: 'TLSv1.2',
  http2: true,
  clientCa: null,
} as const);

export const ADMIN_DEFAULTS = Object.freeze({
  address: '127.0.0.1',
  port: 9901,
} as const);

export const GATEWAY_DEFAULTS = Object.freeze({
  routesFile: 'routes.yaml',
  redis: null,
  workers: 1,
  trustedProxies: Object.freeze([] as string[]),
  pidFile: null,
} as const);

export const REDIS_DEFAULTS = Object.freeze({
  keyPrefix: 'gw:',
  commandTimeout: '100ms',
  failureMode: 'local',
} as const);

export const LIMITS_DEFAULTS = Object.freeze({
  maxHeaderSize: '16kb',
  // Envoy's max_headers_count default. Node's own limit (2000) drops the rest silently.
  maxHeaderCount: 100,
  bodyLimit: '10mb',
  headersTimeout: '10s',
  // Not in the SPEC: fastify 5 has no whole-request limit, so a client dripping a body one byte a
  // minute would hold a socket forever. 60s fits ordinary uploads; 0s turns it off.
  requestTimeout: '60s',
  // Above the 60s idle timeout of common L4/L7 balancers (AWS ALB), so they close first and never
  // send on a connection we are closing.
  keepAliveTimeout: '65s',
  shutdownTimeout: '30s',
} as const);

export const LOG_DEFAULTS = Object.freeze({
  level: 'info',
  accessLog: true,
  accessLogSample: '100%',
} as const);

export const TARGET_DEFAULTS = Object.freeze({
  weight: 1,
} as const);

export const DNS_DISCOVERY_DEFAULTS = Object.freeze({
  type: 'A',
  server: null,
  minRefresh: '1s',
  maxRefresh: '60s',
} as const);

/** The port used for `discovery.server` when it names only an address. */
export const DNS_SERVER_DEFAULT_PORT = 53;

export const UPSTREAM_DEFAULTS = Object.freeze({
  balancer: 'least-request',
  hashOn: null,
  healthCheck: null,
  panicThreshold: '50%',
  maxConnectionsPerEndpoint: 128,
  // Envoy's max_pending_requests default.
  maxPendingRequests: 1024,
  slowStart: null,
} as const);

export const OUTLIER_DETECTION_DEFAULTS = Object.freeze({
  consecutive5xx: 5,
  consecutiveGatewayFailures: 5,
  interval: '10s',
  baseEjectionTime: '30s',
  maxEjectionTime: '300s',
  maxEjectionPercent: 50,
  successRate: null,
} as const);

// Envoy's slow_start_config defaults (aggression 1.0: linear; min_weight_percent 10).
export const SLOW_START_DEFAULTS = Object.freeze({
  window: '30s',
  aggression: 1,
  minWeight: '10%',
} as const);

// Envoy's success_rate_minimum_hosts, success_rate_request_volume, success_rate_stdev_factor.
export const SUCCESS_RATE_DEFAULTS = Object.freeze({
  minimumHosts: 5,
  requestVolume: 100,
  stdevFactor: 1.9,
} as const);

export const HEALTH_CHECK_DEFAULTS = Object.freeze({
  path: '/healthz',
  interval: '5s',
  timeout: '1s',
  unhealthyThreshold: 3,
  healthyThreshold: 2,
} as const);

export const UPSTREAM_TIMEOUT_DEFAULTS = Object.freeze({
  connect: '2s',
  request: '30s',
} as const);

export const RETRY_DEFAULTS = Object.freeze({
  attempts: 1,
  on: Object.freeze(['connect-failure'] as const),
  budget: '20%',
} as const);

export const JWT_PROVIDER_DEFAULTS = Object.freeze({
  audiences: Object.freeze([] as string[]),
  jwksCacheMaxAge: '10m',
  jwksRefetchCooldown: '30s',
  algorithms: Object.freeze(['RS256', 'ES256', 'EdDSA'] as const),
  clockSkew: '30s',
  forwardClaims: Object.freeze({} as Record<string, string>),
} as const);

export const ROUTE_DEFAULTS = Object.freeze({
  host: null,
  methods: null,
  stripPrefix: false,
  rewritePrefix: null,
  auth: 'none',
  rateLimit: Object.freeze([] as string[]),
  websocket: false,
} as const);

export const AUTH_DEFAULTS = Object.freeze({
  require: Object.freeze({} as Record<string, string>),
} as const);

export const MIRROR_DEFAULTS = Object.freeze({
  percent: 100,
} as const);

export const CORS_DEFAULTS = Object.freeze({
  // The CORS-safelisted methods: what a browser sends without asking anyway.
  methods: Object.freeze(['GET', 'HEAD', 'POST'] as const),
  headers: Object.freeze([] as string[]),
  credentials: false,
  // 0s: no Access-Control-Max-Age header, so each browser applies its own (5s in Chromium).
  maxAge: '0s',
} as const);

export const FAULT_ABORT_DEFAULTS = Object.freeze({
  status: 503,
} as const);
