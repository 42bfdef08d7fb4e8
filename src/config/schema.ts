// The two config files (SPEC §3.1 gateway.yaml, §3.2 routes.yaml) as JSON Schemas. These are the
// contract: editors validate against the JSON written from them (config/schema/), `gateway
// validate` checks files with them, and docs/configuration.md's reference is generated from them.
// Rules one schema cannot express (references between sections, "exactly one of") are checked by
// the compile step, which reports them at the same positions.

import { Type, type Static, type TSchema } from '@sinclair/typebox';
import {
  ADMIN_DEFAULTS,
  AUTH_DEFAULTS,
  CORS_DEFAULTS,
  DNS_DISCOVERY_DEFAULTS,
  DNS_SERVER_DEFAULT_PORT,
  FAULT_ABORT_DEFAULTS,
  GATEWAY_DEFAULTS,
  HEALTH_CHECK_DEFAULTS,
  JWT_PROVIDER_DEFAULTS,
  LIMITS_DEFAULTS,
  LISTENER_DEFAULTS,
  LISTENER_TLS_DEFAULTS,
  LOG_DEFAULTS,
  MIRROR_DEFAULTS,
  OUTLIER_DETECTION_DEFAULTS,
  SLOW_START_DEFAULTS,
  SUCCESS_RATE_DEFAULTS,
  REDIS_DEFAULTS,
  RETRY_DEFAULTS,
  ROUTE_DEFAULTS,
  TARGET_DEFAULTS,
  UPSTREAM_DEFAULTS,
  UPSTREAM_TIMEOUT_DEFAULTS,
} from './defaults.js';
import {
  ABSOLUTE_PATH_EXPECTED,
  ABSOLUTE_PATH_PATTERN,
  AnyOf,
  Bool,
  Duration,
  Enum,
  HASH_ON_EXPECTED,
  HASH_ON_PATTERN,
  HEADER_NAME_EXPECTED,
  HEADER_NAME_PATTERN,
  Int,
  Num,
  List,
  MapOf,
  METHOD_EXPECTED,
  METHOD_PATTERN,
  Name,
  NAME_EXPECTED,
  NAME_PATTERN,
  Obj,
  opt,
  OrNull,
  Percent,
  RATE_LIMIT_KEY_EXPECTED,
  RATE_LIMIT_KEY_PATTERN,
  req,
  Size,
  Str,
  True,
  Word,
} from './schema-fields.js';

export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
export const REDIS_FAILURE_MODES = ['local', 'open', 'closed'] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const BALANCERS = ['round-robin', 'weighted-round-robin', 'least-request', 'random', 'peak-ewma', 'consistent-hash'] as const;
export const DNS_RECORD_TYPES = ['A', 'AAAA', 'SRV'] as const;
export const RETRY_CONDITIONS = ['connect-failure', 'reset', 'timeout', '5xx', '502', '503', '504'] as const;
export const RETRY_STATUS_CODES = [502, 503, 504] as const;
export const JWT_ALGORITHMS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'HS256', 'HS384', 'HS512',
] as const;

const RELATIVE = "Relative paths are resolved against this file's folder.";
const NON_EMPTY_STRING = Type.String({ minLength: 1 });

const EditorHint = Str({
  doc: 'Editor hint for JSON files: the JSON Schema this file follows. Ignored by the gateway',
  absent: 'no hint',
});

// ---------------------------------------------------------------------------------------------
// gateway.yaml

const Certificate = Obj(
  {
    cert: req(Str({ doc: `Certificate chain (PEM), leaf first. ${RELATIVE}` })),
    key: req(Str({ doc: `Private key (PEM) of \`cert\`. ${RELATIVE}` })),
  },
  { doc: 'A certificate and its key' },
);

const ListenerTls = Obj(
  {
    certificates: req(
      List(Certificate, {
        doc: "Certificates to serve. SNI picks the one whose SAN matches the requested name; the first one is the default when none matches",
        minItems: 1,
      }),
    ),
    minVersion: opt(Enum(TLS_VERSIONS, { doc: 'Oldest TLS version accepted', default: LISTENER_TLS_DEFAULTS.minVersion })),
    http2: opt(Bool({ doc: 'Offer HTTP/2 through ALPN (h2, then http/1.1)', default: LISTENER_TLS_DEFAULTS.http2 })),
    clientCa: opt(
      OrNull(NON_EMPTY_STRING, {
        doc: `CA bundle (PEM). When set, clients must present a certificate it signed (mTLS). ${RELATIVE}`,
        default: LISTENER_TLS_DEFAULTS.clientCa,
      }),
    ),
  },
  { doc: 'Terminate TLS on this listener', absent: 'plain HTTP' },
);

const Listener = Obj(
  {
    name: req(Name({ doc: 'Names the listener in logs and errors; unique among listeners' })),
    address: opt(
      Str({ doc: 'IP address to bind: 0.0.0.0 for every IPv4 address, :: for every address', default: LISTENER_DEFAULTS.address }),
    ),
    port: req(
      Int({ doc: 'TCP port; unique among all listeners and the admin listener. 0 picks a free port (tests)', min: 0, max: 65535 }),
    ),
    redirectToHttps: opt(
      Bool({
        doc: 'Answer every request with a 308 redirect to https://host[:port of the first TLS listener, omitted when 443]/path?query instead of routing it',
        default: LISTENER_DEFAULTS.redirectToHttps,
      }),
    ),
    tls: opt(ListenerTls),
  },
  { doc: 'A public listener' },
);

const Admin = Obj(
  {
    address: opt(Str({ doc: 'IP address of the admin listener; keep it private (metrics, config dump, reload)', default: ADMIN_DEFAULTS.address })),
    port: opt(Int({ doc: 'TCP port of the admin listener. 0 picks a free port (tests)', min: 0, max: 65535, default: ADMIN_DEFAULTS.port })),
  },
  { doc: 'The admin listener: /metrics, /healthz, /readyz, /config, /upstreams, /reload and the status page', default: {} },
);

const Redis = Obj(
  {
    url: opt(
      Str({
        doc: 'One Redis: redis://[user:password@]host:port[/db], or rediss:// for TLS. Set exactly one of url and cluster',
        absent: 'cluster is used',
      }),
    ),
    cluster: opt(
      List(NON_EMPTY_STRING, {
        doc: 'Redis Cluster seed nodes as redis:// or rediss:// URLs. Set exactly one of url and cluster',
        minItems: 1,
        absent: 'url is used',
      }),
    ),
    keyPrefix: opt(Str({ doc: 'Prefix of every key the gateway writes, so several gateways can share one Redis', default: REDIS_DEFAULTS.keyPrefix, allowEmpty: true })),
    commandTimeout: opt(
      Duration({ doc: 'A Redis command slower than this counts as a failure (see failureMode)', min: '1ms', max: '10s', default: REDIS_DEFAULTS.commandTimeout }),
    ),
    failureMode: opt(
      Enum(REDIS_FAILURE_MODES, {
        doc: 'When Redis is down or slower than commandTimeout: local = keep limiting in-process at limit / N and burst / N (N = gateway instances that heartbeated into Redis within the 30s before the outage); open = allow and count store_error; closed = answer 503',
        default: REDIS_DEFAULTS.failureMode,
      }),
    ),
  },
  { doc: 'Shared rate-limit state' },
);

const Limits = Obj(
  {
    maxHeaderSize: opt(Size({ doc: 'Largest request head (request line and headers); larger is answered 431', min: '1kb', max: '1mb', default: LIMITS_DEFAULTS.maxHeaderSize })),
    maxHeaderCount: opt(Int({ doc: 'Most header fields in a request; more is answered 431, never silently dropped (Node alone would drop those past 2000)', min: 1, max: 10000, default: LIMITS_DEFAULTS.maxHeaderCount })),
    bodyLimit: opt(
      Size({ doc: 'Largest request body; the request is answered 413 as soon as the body passes it (bodies stream, nothing is buffered whole)', min: '1b', max: '1024gb', default: LIMITS_DEFAULTS.bodyLimit }),
    ),
    headersTimeout: opt(
      Duration({ doc: 'Time a client has to send the complete request head (slowloris guard); at most requestTimeout', min: '1s', max: '10m', default: LIMITS_DEFAULTS.headersTimeout }),
    ),
    requestTimeout: opt(
      Duration({
        doc: 'Time a client has to send the whole request, head and body; guards against dripped bodies (fastify 5 has no limit of its own)',
        min: '0s',
        max: '24h',
        zeroMeans: 'disables it',
        default: LIMITS_DEFAULTS.requestTimeout,
      }),
    ),
    keepAliveTimeout: opt(
      Duration({ doc: 'How long an idle client connection is kept open; keep it above the idle timeout of any balancer in front', min: '1s', max: '1h', default: LIMITS_DEFAULTS.keepAliveTimeout }),
    ),
    shutdownTimeout: opt(
      Duration({ doc: 'On SIGTERM, how long in-flight requests may take to finish before the process exits anyway', min: '0s', max: '1h', default: LIMITS_DEFAULTS.shutdownTimeout }),
    ),
  },
  { doc: 'Per-connection and per-request limits of the public listeners', default: {} },
);

const Log = Obj(
  {
    level: opt(Enum(LOG_LEVELS, { doc: 'Lowest level written (pino, JSON lines on stdout)', default: LOG_DEFAULTS.level })),
    accessLog: opt(
      Bool({
        doc: 'One JSON line per request: time, request id, client ip, method, host, path, route, upstream, endpoint, status, bytes, durations, rate-limit decision, JWT subject (never a token)',
        default: LOG_DEFAULTS.accessLog,
      }),
    ),
    accessLogSample: opt(
      Percent({
        doc: 'Share of requests the access log records (a line with a 5xx status is always written): lowers its cost on busy listeners. 0%-100%',
        default: LOG_DEFAULTS.accessLogSample,
      }),
    ),
  },
  { doc: 'Logging', default: {} },
);

export const GatewayFileSchema = Obj(
  {
    $schema: opt(EditorHint),
    listeners: req(List(Listener, { doc: 'Public listeners; fixed for the life of the process', minItems: 1 })),
    admin: opt(Admin),
    routesFile: opt(Str({ doc: `The routes file, re-read on every reload. ${RELATIVE}`, default: GATEWAY_DEFAULTS.routesFile })),
    redis: opt(
      OrNull(Redis, {
        doc: 'Shared rate-limit state, so limits hold across every gateway instance. Leave out (or null) for an in-process store (one instance only)',
        default: GATEWAY_DEFAULTS.redis,
      }),
    ),
    workers: opt(
      AnyOf([Type.Integer({ minimum: 1, maximum: 1024 }), Word('auto')], {
        doc: 'Worker processes: a number, or auto for one per CPU core. With more than one, the primary owns signals and fans them out',
        expected: 'a number of processes from 1 to 1024, or auto',
        default: GATEWAY_DEFAULTS.workers,
      }),
    ),
    trustedProxies: opt(
      List(NON_EMPTY_STRING, {
        doc: 'IP addresses and CIDRs (10.0.0.0/8, ::1) whose X-Forwarded-For and Forwarded headers are believed',
        default: GATEWAY_DEFAULTS.trustedProxies,
      }),
    ),
    limits: opt(Limits),
    log: opt(Log),
    pidFile: opt(
      OrNull(NON_EMPTY_STRING, { doc: `Write the process id to this file at start. ${RELATIVE}`, default: GATEWAY_DEFAULTS.pidFile }),
    ),
  },
  { doc: 'gateway.yaml: read at start' },
);

// ---------------------------------------------------------------------------------------------
// routes.yaml

const Target = Obj(
  {
    url: req(Str({ doc: 'Endpoint origin: http:// or https://, a host and an optional port (80/443 when left out); no path' })),
    weight: opt(Int({ doc: 'Relative share of requests for weighted balancers', min: 1, max: 1000, default: TARGET_DEFAULTS.weight })),
  },
  { doc: 'A static endpoint' },
);

const DnsQuery = Obj(
  {
    name: req(Str({ doc: 'DNS name to resolve' })),
    type: opt(
      Enum(DNS_RECORD_TYPES, {
        doc: 'Record type. SRV: port and weight come from the records, and target names resolve through the same server',
        default: DNS_DISCOVERY_DEFAULTS.type,
      }),
    ),
    port: opt(Int({ doc: 'Port of the resolved addresses; required for A and AAAA, not allowed for SRV', min: 1, max: 65535, absent: 'SRV records carry the port' })),
  },
  { doc: 'What to resolve' },
);

const Discovery = Obj(
  {
    dns: req(DnsQuery),
    server: opt(
      OrNull(NON_EMPTY_STRING, {
        doc: `DNS server as address or address:port (port ${DNS_SERVER_DEFAULT_PORT} when left out), e.g. 127.0.0.1:5353; null uses the system resolver`,
        default: DNS_DISCOVERY_DEFAULTS.server,
      }),
    ),
    minRefresh: opt(Duration({ doc: 'Re-resolve no more often than this, whatever the TTL says', min: '100ms', max: '1h', default: DNS_DISCOVERY_DEFAULTS.minRefresh })),
    maxRefresh: opt(Duration({ doc: 'Re-resolve at least this often, whatever the TTL says; at least minRefresh', min: '1s', max: '24h', default: DNS_DISCOVERY_DEFAULTS.maxRefresh })),
  },
  { doc: 'Endpoints from DNS, re-resolved on the record TTL (bounded by minRefresh and maxRefresh). Set exactly one of targets and discovery', absent: 'targets are used' },
);

const OutlierDetectionFields = Obj(
  {
    consecutive5xx: opt(Int({ doc: 'Eject an endpoint after this many 5xx answers in a row (reason consecutive_5xx)', min: 1, max: 1000, default: OUTLIER_DETECTION_DEFAULTS.consecutive5xx })),
    consecutiveGatewayFailures: opt(
      Int({
        doc: 'Eject after this many gateway failures in a row: connect refused, reset, timeout, 502/503/504 (reason consecutive_gateway_failure)',
        min: 1,
        max: 1000,
        default: OUTLIER_DETECTION_DEFAULTS.consecutiveGatewayFailures,
      }),
    ),
    interval: opt(Duration({ doc: 'How often ejections are decided and expired ones restored', min: '100ms', max: '1h', default: OUTLIER_DETECTION_DEFAULTS.interval })),
    baseEjectionTime: opt(
      Duration({ doc: "The n-th ejection of an endpoint lasts n × this, capped at maxEjectionTime", min: '1ms', max: '1h', default: OUTLIER_DETECTION_DEFAULTS.baseEjectionTime }),
    ),
    maxEjectionTime: opt(Duration({ doc: 'Longest ejection; at least baseEjectionTime', min: '1ms', max: '24h', default: OUTLIER_DETECTION_DEFAULTS.maxEjectionTime })),
    maxEjectionPercent: opt(
      Percent({ doc: 'Most of the pool that may be ejected at once, counted as if the ejection had happened: never exceeded', default: OUTLIER_DETECTION_DEFAULTS.maxEjectionPercent }),
    ),
    successRate: opt(
      OrNull(
        Obj(
          {
            minimumHosts: opt(Int({ doc: 'Success rates are compared only when at least this many endpoints had requestVolume requests in the interval', min: 1, max: 10000, default: SUCCESS_RATE_DEFAULTS.minimumHosts })),
            requestVolume: opt(Int({ doc: 'Requests an endpoint needs in one interval for its success rate to count', min: 1, max: 1_000_000, default: SUCCESS_RATE_DEFAULTS.requestVolume })),
            stdevFactor: opt(Num({ doc: 'Eject endpoints whose success rate is below mean − stdevFactor × standard deviation of the pool', min: 0.1, max: 10, default: SUCCESS_RATE_DEFAULTS.stdevFactor })),
          },
          { doc: 'Success-rate detection settings' },
        ),
        {
          doc: "Envoy's success-rate outlier detection, decided each interval (reason success_rate); {} turns it on with the defaults below. Off by default: the SPEC's default detection is consecutive failures only",
          default: OUTLIER_DETECTION_DEFAULTS.successRate,
        },
      ),
    ),
  },
  { doc: 'Passive outlier detection settings' },
);

const OutlierDetection = AnyOf([Word('off'), OutlierDetectionFields], {
  doc: "Passive ejection of misbehaving endpoints from the answers they give, with Envoy's meaning for each field. On by default; off disables it",
  expected: 'off, or an object of outlier detection settings',
  default: {},
});

const HealthCheck = Obj(
  {
    path: opt(Str({ doc: 'Path requested with GET; a 2xx answer is healthy', pattern: ABSOLUTE_PATH_PATTERN, expected: ABSOLUTE_PATH_EXPECTED, default: HEALTH_CHECK_DEFAULTS.path })),
    interval: opt(Duration({ doc: 'Time between checks of one endpoint', min: '100ms', max: '1h', default: HEALTH_CHECK_DEFAULTS.interval })),
    timeout: opt(Duration({ doc: 'A check not answered within this fails', min: '1ms', max: '1m', default: HEALTH_CHECK_DEFAULTS.timeout })),
    unhealthyThreshold: opt(Int({ doc: 'Failed checks in a row that mark an endpoint unhealthy', min: 1, max: 100, default: HEALTH_CHECK_DEFAULTS.unhealthyThreshold })),
    healthyThreshold: opt(Int({ doc: 'Passed checks in a row that mark an unhealthy endpoint healthy again', min: 1, max: 100, default: HEALTH_CHECK_DEFAULTS.healthyThreshold })),
  },
  { doc: 'Active health checks settings' },
);

const UpstreamTimeouts = Obj(
  {
    connect: opt(Duration({ doc: 'Time to open a connection to an endpoint', min: '1ms', max: '5m', default: UPSTREAM_TIMEOUT_DEFAULTS.connect })),
    request: opt(
      Duration({ doc: 'Time from sending the request until the response headers arrive, all retries included; then 504', min: '1ms', max: '1h', default: UPSTREAM_TIMEOUT_DEFAULTS.request }),
    ),
  },
  { doc: 'Upstream timeouts', default: {} },
);

const RetryOn = Type.Union(
  [
    Enum(RETRY_CONDITIONS, { doc: 'A retry condition' }),
    Type.Unsafe<(typeof RETRY_STATUS_CODES)[number]>({ type: 'integer', enum: [...RETRY_STATUS_CODES] }),
  ],
  { 'x-expected': `one of: ${RETRY_CONDITIONS.join(', ')}` },
);

const Retries = Obj(
  {
    attempts: opt(
      Int({ doc: 'Retries after the first try: at most attempts + 1 upstream hits. 0 never retries', min: 0, max: 10, default: RETRY_DEFAULTS.attempts }),
    ),
    on: opt(
      List(RetryOn, {
        doc: 'What is retried: connect-failure, reset, timeout, 5xx, 502, 503, 504. Only idempotent methods are retried, except on connect-failure (nothing was sent)',
        unique: true,
        default: RETRY_DEFAULTS.on,
      }),
    ),
    budget: opt(Percent({ doc: 'Retries may add at most this share of the requests in flight to the pool, so retries cannot multiply an outage', default: RETRY_DEFAULTS.budget })),
    perTryTimeout: opt(
      Duration({
        doc: 'Time one attempt may wait for response headers before it is abandoned (and retried when `on` lists timeout or 504); the request timeout still bounds all attempts together',
        min: '1ms',
        max: '1h',
        absent: 'each attempt may use what is left of the request timeout',
      }),
    ),
  },
  { doc: 'Retries to another endpoint', default: {} },
);

const Upstream = Obj(
  {
    targets: opt(List(Target, { doc: 'Static endpoints. Set exactly one of targets and discovery', minItems: 1, absent: 'discovery is used' })),
    discovery: opt(Discovery),
    balancer: opt(Enum(BALANCERS, { doc: 'How an endpoint is picked for each request', default: UPSTREAM_DEFAULTS.balancer })),
    hashOn: opt(
      OrNull(Type.String({ pattern: HASH_ON_PATTERN, 'x-expected': HASH_ON_EXPECTED }), {
        doc: 'Key of the consistent-hash balancer: ip, header:<name>, cookie:<name> or jwt:<claim>. Required by consistent-hash, not allowed with other balancers',
        default: UPSTREAM_DEFAULTS.hashOn,
      }),
    ),
    outlierDetection: opt(OutlierDetection),
    healthCheck: opt(
      OrNull(HealthCheck, { doc: 'Active health checks; an endpoint failing them is marked unhealthy. {} checks with the defaults below', default: UPSTREAM_DEFAULTS.healthCheck }),
    ),
    panicThreshold: opt(
      Percent({ doc: 'When fewer than this share of the endpoints are usable, balance over all of them (ejected or not)', default: UPSTREAM_DEFAULTS.panicThreshold }),
    ),
    timeouts: opt(UpstreamTimeouts),
    retries: opt(Retries),
    maxConnectionsPerEndpoint: opt(
      Int({ doc: 'Most concurrent connections to one endpoint; further requests wait for one', min: 1, max: 100000, default: UPSTREAM_DEFAULTS.maxConnectionsPerEndpoint }),
    ),
    slowStart: opt(
      OrNull(
        Obj(
          {
            window: opt(Duration({ doc: 'How long an endpoint that joined or came back takes to reach its full share', min: '1ms', max: '1h', default: SLOW_START_DEFAULTS.window })),
            aggression: opt(Num({ doc: 'Shape of the ramp: share = (time / window)^(1 / aggression); 1 is linear, above 1 ramps faster at first', min: 0.1, max: 10, default: SLOW_START_DEFAULTS.aggression })),
            minWeight: opt(Percent({ doc: 'Smallest share of its traffic an endpoint gets during its window', default: SLOW_START_DEFAULTS.minWeight })),
          },
          { doc: 'Slow start settings' },
        ),
        {
          doc: "Envoy's slow start: an endpoint added by discovery or a reload, or back from an ejection or failed health checks, gets a share of its traffic that grows over `window`, so a cold cache or JIT is not hit with full load. {} turns it on with the defaults below. Not with consistent-hash (it would move keys)",
          default: UPSTREAM_DEFAULTS.slowStart,
        },
      ),
    ),
    maxPendingRequests: opt(
      Int({
        doc: 'Circuit breaker: most requests of the pool that may wait for a connection (their endpoint at maxConnectionsPerEndpoint); beyond it the gateway answers 503 upstream_overloaded at once',
        min: 1,
        max: 1000000,
        default: UPSTREAM_DEFAULTS.maxPendingRequests,
      }),
    ),
  },
  { doc: 'A pool of endpoints' },
);

const JwtProvider = Obj(
  {
    issuer: req(Str({ doc: 'Expected iss claim, compared exactly' })),
    audiences: opt(
      List(NON_EMPTY_STRING, { doc: 'Accepted aud values (any one suffices); [] does not check aud', unique: true, default: JWT_PROVIDER_DEFAULTS.audiences }),
    ),
    jwksUri: opt(Str({ doc: 'https:// (or http://) URL of the JSON Web Key Set. Set exactly one of jwksUri and jwksFile', absent: 'jwksFile is used' })),
    jwksFile: opt(Str({ doc: `Local JSON Web Key Set file, re-read on reload. Set exactly one of jwksUri and jwksFile. ${RELATIVE}`, absent: 'jwksUri is used' })),
    jwksCacheMaxAge: opt(
      Duration({ doc: 'Fetched keys are refreshed in the background before they are this old; when the endpoint fails, the last good keys keep working', min: '1m', max: '168h', default: JWT_PROVIDER_DEFAULTS.jwksCacheMaxAge }),
    ),
    jwksRefetchCooldown: opt(
      Duration({ doc: 'A token with an unknown kid triggers one refetch (single-flight), at most once per this period', min: '0s', max: '1h', default: JWT_PROVIDER_DEFAULTS.jwksRefetchCooldown }),
    ),
    algorithms: opt(
      List(Enum(JWT_ALGORITHMS, { doc: 'A JWS algorithm' }), {
        doc: 'Accepted alg values; a token signed otherwise is invalid',
        minItems: 1,
        unique: true,
        default: JWT_PROVIDER_DEFAULTS.algorithms,
      }),
    ),
    clockSkew: opt(Duration({ doc: 'Tolerance when checking exp, nbf and iat', min: '0s', max: '10m', default: JWT_PROVIDER_DEFAULTS.clockSkew })),
    forwardClaims: opt(
      MapOf(Type.String({ pattern: HEADER_NAME_PATTERN, 'x-expected': HEADER_NAME_EXPECTED }), {
        doc: 'Claims copied into request headers for the upstream, claim: header-name; client copies of those headers are removed first',
        keyPattern: '^\\S+$',
        keyExpected: 'a claim name without spaces',
        default: JWT_PROVIDER_DEFAULTS.forwardClaims,
      }),
    ),
  },
  { doc: 'A JWT issuer' },
);

const RateLimitKeyPart = Type.String({ pattern: RATE_LIMIT_KEY_PATTERN, 'x-expected': RATE_LIMIT_KEY_EXPECTED });

const RateLimitPolicy = Obj(
  {
    key: req(
      AnyOf([RateLimitKeyPart, Type.Array(RateLimitKeyPart, { minItems: 1, uniqueItems: true })], {
        doc: 'What is counted separately: ip, route, header:<name>, jwt:<claim>, or a list of them joined',
        expected: `${RATE_LIMIT_KEY_EXPECTED}, or a list of them`,
      }),
    ),
    limit: req(Int({ doc: 'Sustained rate: requests allowed per window', min: 1, max: 1_000_000_000 })),
    window: req(Duration({ doc: 'The period of limit', min: '1ms', max: '24h' })),
    burst: opt(
      Int({ doc: 'How many requests may arrive at once (GCRA)', min: 1, max: 1_000_000_000, absent: 'equal to limit' }),
    ),
  },
  { doc: 'A rate-limit policy' },
);

const RouteTimeouts = Obj(
  {
    request: opt(Duration({ doc: "Overrides the upstream's timeouts.request for this route", min: '1ms', max: '1h', absent: "the upstream's" })),
  },
  {
    // No `connect` here: the connect timeout belongs to the endpoint's connections, which every
    // route using the pool shares, so it is set on the upstream only.
    doc: "Per-route timeouts (only `request`: the connect timeout is the upstream's, shared by every route using it)",
    absent: "the upstream's timeouts apply",
  },
);

const ClaimRequirement = AnyOf([NON_EMPTY_STRING, Type.Array(NON_EMPTY_STRING, { minItems: 1 })], {
  doc: 'Required claim value',
  expected: 'a string, or a list of strings',
});

const Auth = AnyOf(
  [
    Word('none'),
    Obj(
      {
        jwt: req(Name({ doc: 'The jwtProviders entry that verifies the token' })),
        require: opt(
          MapOf(ClaimRequirement, {
            doc: 'claim: value. Each claim must equal the value, or be an array containing it, or (scope, scp) a space-delimited string containing it; a list value requires all of its entries',
            keyPattern: '^\\S+$',
            keyExpected: 'a claim name without spaces',
            default: AUTH_DEFAULTS.require,
          }),
        ),
      },
      { doc: 'JWT authentication' },
    ),
  ],
  { doc: 'none, or a JWT provider and the claims it must carry', expected: 'none, or an object with jwt and require', default: ROUTE_DEFAULTS.auth },
);

const HeaderMatch = AnyOf(
  [
    Type.String(),
    Obj(
      {
        present: opt(True({ doc: 'The header must be present, whatever its value', absent: 'not used' })),
        regex: opt(Str({ doc: 'The header value must match this regular expression (JavaScript syntax, unanchored)', absent: 'not used' })),
      },
      { doc: 'Set exactly one of present and regex' },
    ),
  ],
  { doc: 'Exact value, { present: true } or { regex: "..." }', expected: 'a string, { present: true } or { regex: ... }' },
);

const Match = Obj(
  {
    headers: opt(
      MapOf(HeaderMatch, {
        doc: 'Header conditions, by header name (case-insensitive)',
        keyPattern: HEADER_NAME_PATTERN,
        keyExpected: HEADER_NAME_EXPECTED,
        default: {},
      }),
    ),
    query: opt(MapOf(Type.String(), { doc: 'Query parameter conditions: name: exact value', keyPattern: '^.+$', keyExpected: 'a parameter name', default: {} })),
  },
  { doc: 'Extra conditions, all of which must hold; each entry counts one in route choice', absent: 'no extra conditions' },
);

const SplitEntry = Obj(
  {
    upstream: req(Name({ doc: 'An upstreams entry' })),
    weight: req(Int({ doc: 'Relative share of requests', min: 0, max: 1000 })),
  },
  { doc: 'A share of the route' },
);

const Mirror = Obj(
  {
    upstream: req(Name({ doc: 'The upstreams entry that receives the copies' })),
    percent: opt(Percent({ doc: 'Share of the requests copied', default: MIRROR_DEFAULTS.percent })),
  },
  { doc: 'Send a copy of requests to another pool; its answer is discarded and it never slows or fails the real request', absent: 'no mirroring' },
);

const HeaderRewrite = (direction: string) =>
  Obj(
    {
      set: opt(
        MapOf(Type.String(), {
          doc: `Headers set on the ${direction}, replacing any copy: name: value`,
          keyPattern: HEADER_NAME_PATTERN,
          keyExpected: HEADER_NAME_EXPECTED,
          default: {},
        }),
      ),
      remove: opt(
        List(Type.String({ pattern: HEADER_NAME_PATTERN, 'x-expected': HEADER_NAME_EXPECTED }), {
          doc: `Headers removed from the ${direction}`,
          unique: true,
          default: [],
        }),
      ),
    },
    { doc: `Changes to the headers of the ${direction}`, absent: 'unchanged' },
  );

const Headers = Obj(
  {
    request: opt(HeaderRewrite('request sent upstream')),
    response: opt(HeaderRewrite('response sent to the client')),
  },
  { doc: 'Header rewrites', absent: 'no rewrites' },
);

const Cors = Obj(
  {
    origins: req(List(NON_EMPTY_STRING, { doc: 'Allowed origins (https://app.example.com), or * for any', minItems: 1, unique: true })),
    methods: opt(List(Type.String({ pattern: METHOD_PATTERN, 'x-expected': METHOD_EXPECTED }), { doc: 'Methods allowed cross-origin', unique: true, default: CORS_DEFAULTS.methods })),
    headers: opt(
      List(Type.String({ pattern: HEADER_NAME_PATTERN, 'x-expected': HEADER_NAME_EXPECTED }), { doc: 'Request headers allowed cross-origin', unique: true, default: CORS_DEFAULTS.headers }),
    ),
    credentials: opt(Bool({ doc: 'Allow credentials (cookies, Authorization); not allowed with origin *', default: CORS_DEFAULTS.credentials })),
    maxAge: opt(
      Duration({ doc: 'How long browsers may cache a preflight answer', min: '0s', max: '24h', zeroMeans: 'sends no Access-Control-Max-Age', default: CORS_DEFAULTS.maxAge }),
    ),
  },
  {
    doc: 'Cross-origin requests. Preflights (OPTIONS + Origin + Access-Control-Request-Method) are answered by the gateway, never sent upstream',
    absent: 'no CORS handling',
  },
);

const Fault = Obj(
  {
    delay: opt(
      Obj(
        {
          percent: req(Percent({ doc: 'Share of requests delayed' })),
          duration: req(Duration({ doc: 'Added delay', min: '1ms', max: '1h' })),
        },
        { doc: 'Delay some requests before forwarding them', absent: 'no delay' },
      ),
    ),
    abort: opt(
      Obj(
        {
          percent: req(Percent({ doc: 'Share of requests refused' })),
          status: opt(Int({ doc: 'Status of the refusal (JSON error, code fault_injected)', min: 200, max: 599, default: FAULT_ABORT_DEFAULTS.status })),
        },
        { doc: 'Refuse some requests without forwarding them', absent: 'no abort' },
      ),
    ),
  },
  { doc: 'Fault injection for chaos testing', absent: 'no faults' },
);

const Route = Obj(
  {
    name: req(Name({ doc: 'Unique route name; the route label of metrics and logs' })),
    prefix: req(
      Str({
        doc: 'Path prefix at a segment boundary: /api/users matches /api/users and /api/users/..., not /api/usersx. A trailing / is ignored',
        pattern: ABSOLUTE_PATH_PATTERN,
        expected: ABSOLUTE_PATH_EXPECTED,
      }),
    ),
    host: opt(Str({ doc: 'Host to match, exact (api.example.com) or wildcard (*.example.com: any name ending in .example.com, not example.com itself); case-insensitive', absent: 'any host' })),
    methods: opt(
      List(Type.String({ pattern: METHOD_PATTERN, 'x-expected': METHOD_EXPECTED }), { doc: 'Methods to match; other methods on the same host and path get 405', minItems: 1, absent: 'any method' }),
    ),
    match: opt(Match),
    upstream: opt(Name({ doc: 'The upstreams entry serving this route. Set exactly one of upstream and split', absent: 'split is used' })),
    split: opt(List(SplitEntry, { doc: 'Weighted split across pools, instead of upstream', minItems: 1, absent: 'upstream is used' })),
    mirror: opt(Mirror),
    stripPrefix: opt(Bool({ doc: 'Remove the prefix before forwarding (/api/users/7 is sent as /7); not with rewritePrefix', default: ROUTE_DEFAULTS.stripPrefix })),
    rewritePrefix: opt(
      OrNull(Type.String({ pattern: ABSOLUTE_PATH_PATTERN, 'x-expected': ABSOLUTE_PATH_EXPECTED }), {
        doc: 'Replace the prefix before forwarding (prefix /api/orders, rewritePrefix /v1/orders: /api/orders/7 is sent as /v1/orders/7); not with stripPrefix',
        default: ROUTE_DEFAULTS.rewritePrefix,
      }),
    ),
    auth: opt(Auth),
    rateLimit: opt(
      List(Type.String({ pattern: NAME_PATTERN, 'x-expected': NAME_EXPECTED }), { doc: 'rateLimits entries that apply; all must allow', unique: true, default: ROUTE_DEFAULTS.rateLimit }),
    ),
    websocket: opt(Bool({ doc: 'Allow WebSocket upgrades on this route', default: ROUTE_DEFAULTS.websocket })),
    timeouts: opt(RouteTimeouts),
    headers: opt(Headers),
    cors: opt(Cors),
    fault: opt(Fault),
  },
  { doc: 'A route' },
);

export const RoutesFileSchema = Obj(
  {
    $schema: opt(EditorHint),
    upstreams: opt(
      MapOf(Upstream, { doc: 'Pools of endpoints, by name', keyPattern: NAME_PATTERN, keyExpected: NAME_EXPECTED, default: {} }),
    ),
    jwtProviders: opt(
      MapOf(JwtProvider, { doc: 'JWT issuers, by name', keyPattern: NAME_PATTERN, keyExpected: NAME_EXPECTED, default: {} }),
    ),
    rateLimits: opt(
      MapOf(RateLimitPolicy, { doc: 'Rate-limit policies, by name', keyPattern: NAME_PATTERN, keyExpected: NAME_EXPECTED, default: {} }),
    ),
    routes: req(
      List(Route, {
        doc: 'Routes. Required, even when empty (routes: []), so a truncated file cannot silently drop every route',
      }),
    ),
  },
  { doc: 'routes.yaml: re-read on every reload' },
);

/** gateway.yaml as the schema admits it: the input of the compile step. */
export type GatewayFile = Static<typeof GatewayFileSchema>;
/** routes.yaml as the schema admits it: the input of the compile step. */
export type RoutesFile = Static<typeof RoutesFileSchema>;

export type ListenerEntry = Static<typeof Listener>;
export type UpstreamEntry = Static<typeof Upstream>;
export type JwtProviderEntry = Static<typeof JwtProvider>;
export type RateLimitPolicyEntry = Static<typeof RateLimitPolicy>;
export type RouteEntry = Static<typeof Route>;

export type ConfigFileKind = 'gateway' | 'routes';

export const CONFIG_FILE_SCHEMAS: Readonly<Record<ConfigFileKind, TSchema>> = {
  gateway: GatewayFileSchema,
  routes: RoutesFileSchema,
};
