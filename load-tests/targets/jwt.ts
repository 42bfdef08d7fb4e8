// The gateway in front of a JWT-protected route, for `npm run bench:jwt` (load-tests/jwt.ts): the
// tokens (ES256, minted with jose before the run), the JWKS they verify against (a local
// `jwksFile`, so no network is involved), and a target that sends a different Authorization header
// per request and checks afterwards, from the gateway's own metrics, that it really verified them.
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { HeaderSequence } from '../harness/load.js';
import { httpGet } from '../harness/processes.js';
import type { RoundContext, RunningTarget, Target } from '../harness/target.js';
import { startGateway } from './gateway.js';

export const ISSUER = 'https://issuer.bench.invalid/';
export const AUDIENCE = 'bench-api';
export const KID = 'bench-es256';
/** The jwtProviders entry of the generated routes file. */
export const PROVIDER = 'main';
const JWKS_FILE = 'jwks.json';
/** Tokens signed at once (WebCrypto signs on libuv's thread pool). */
const MINT_BATCH = 500;

export interface TokenSet {
  /** The JWKS document (public key only), as written to `jwksFile`. */
  readonly jwks: string;
  /** `Bearer <token>` values of distinct tokens, all the same length; [0] is the hot token. */
  readonly authorizations: readonly string[];
  /** Characters of one token (without `Bearer `). */
  readonly tokenLength: number;
  readonly mintMs: number;
  readonly expiresAt: Date;
}

/**
 * `count` distinct ES256 tokens from one fresh P-256 key: iss, aud, sub (`user-000042`, so every
 * token has the same length), scope, iat and exp, header alg + kid + typ.
 */
export async function mintTokens(count: number, lifetimeS: number): Promise<TokenSet> {
  if (count > 1_000_000) throw new RangeError('at most 1 000 000 tokens (sub is 6 digits)');
  const started = performance.now();
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: KID, alg: 'ES256', use: 'sig' };
  const iat = Math.floor(Date.now() / 1000);
  const exp = iat + Math.ceil(lifetimeS);
  const one = (i: number): Promise<string> =>
    new SignJWT({ scope: 'items:read' })
      .setProtectedHeader({ alg: 'ES256', kid: KID, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(`user-${String(i).padStart(6, '0')}`)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(privateKey);
  const tokens: string[] = [];
  for (let from = 0; from < count; from += MINT_BATCH) {
    const batch = await Promise.all(Array.from({ length: Math.min(MINT_BATCH, count - from) }, (_, k) => one(from + k)));
    tokens.push(...batch);
  }
  const lengths = new Set(tokens.map((t) => t.length));
  if (lengths.size !== 1) throw new Error(`minted tokens of ${lengths.size} different lengths`);
  return {
    jwks: JSON.stringify({ keys: [jwk] }),
    authorizations: tokens.map((t) => `Bearer ${t}`),
    tokenLength: tokens[0]?.length ?? 0,
    mintMs: performance.now() - started,
    expiresAt: new Date(exp * 1000),
  };
}

/** The Authorization header cycling through `values` in order, one per request, over all connections. */
export class CyclingAuthorization implements HeaderSequence {
  readonly name = 'authorization';
  #sent = 0;

  constructor(readonly values: readonly string[]) {
    if (values.length === 0) throw new RangeError('no values to cycle through');
  }

  next(): string {
    const value = this.values[this.#sent % this.values.length]!;
    this.#sent++;
    return value;
  }

  /** Values handed out so far: requests built (sent, or about to be) by the load generator. */
  get sent(): number {
    return this.#sent;
  }
}

/** What one started target saw, read just before it was stopped. */
export interface TokenRun {
  readonly target: string;
  /** Distinct tokens the target cycles through. */
  readonly distinct: number;
  /** Header values handed out over warm-up and measurement (the first check request not included). */
  readonly sent: number;
  /** gateway_jwt_verifications_total of the route's provider by result; null when /metrics failed. */
  readonly verifications: Readonly<Record<string, number>> | null;
}

export interface JwtRouteOptions {
  readonly name: string;
  readonly description: string;
  /** false: the same route and provider, without `auth` on the route (the baseline). */
  readonly auth: boolean;
  readonly tokens: TokenSet;
  /** The `Bearer` values sent, cycled in order; a prefix of tokens.authorizations. */
  readonly authorizations: readonly string[];
  /** Called once per started target, after the load and before the gateway is stopped. */
  readonly onStopped?: (run: TokenRun) => void;
}

/**
 * One prefix route `/api` (stripPrefix) over the round's pool, least-request, with a jwtProviders
 * entry (ES256 from `jwksFile`, iss and aud checked) that the route uses (`auth: { jwt: main }`)
 * or, for the baseline, leaves unused: the two routes files differ only in `auth`.
 */
export function jwtRouteTarget(options: JwtRouteOptions): Target {
  const scenario = {
    name: options.name,
    description: options.description,
    routes: (upstreams: readonly string[]) => ({
      upstreams: { pool: { targets: upstreams.map((url) => ({ url })), balancer: 'least-request' } },
      jwtProviders: { [PROVIDER]: { issuer: ISSUER, audiences: [AUDIENCE], jwksFile: JWKS_FILE, algorithms: ['ES256'] } },
      routes: [
        { name: 'bench', prefix: '/api', upstream: 'pool', stripPrefix: true, ...(options.auth ? { auth: { jwt: PROVIDER } } : {}) },
      ],
    }),
    path: '/api/items',
    // The runner's first check request (must be 200): the first token of the cycle.
    headers: { authorization: options.authorizations[0] ?? '' },
    files: { [JWKS_FILE]: options.tokens.jwks },
  };
  return {
    name: options.name,
    description: options.description,
    async start(context: RoundContext): Promise<RunningTarget> {
      const gateway = await startGateway(scenario, context);
      const sequence = new CyclingAuthorization(options.authorizations);
      const problems: string[] = [];
      return {
        port: gateway.port,
        path: gateway.path,
        headers: scenario.headers,
        headerSequence: sequence,
        ...(gateway.build === undefined ? {} : { build: gateway.build }),
        ...(gateway.pid === undefined ? {} : { pid: gateway.pid }),
        problems: () => [...problems, ...gateway.problems()],
        async stop(): Promise<void> {
          let verifications: Record<string, number> | null = null;
          try {
            const res = await httpGet(`http://127.0.0.1:${gateway.adminPort}/metrics`, {}, 5000);
            if (res.status !== 200) throw new Error(`status ${res.status}`);
            verifications = verificationCounts(res.body.toString('utf8'));
          } catch (err) {
            if (options.auth) problems.push(`could not read the gateway's /metrics to confirm the tokens were verified: ${(err as Error).message}`);
          }
          if (verifications !== null) problems.push(...verificationProblems(options.auth, verifications));
          options.onStopped?.({ target: options.name, distinct: options.authorizations.length, sent: sequence.sent, verifications });
          await gateway.stop();
        },
      };
    },
  };
}

/** `gateway_jwt_verifications_total{provider="main",result="ok"} 123` → { ok: 123 }. */
export function verificationCounts(metrics: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('gateway_jwt_verifications_total{')) continue;
    const close = line.lastIndexOf('}');
    const labels = line.slice(line.indexOf('{') + 1, close);
    if (!labels.includes(`provider="${PROVIDER}"`)) continue;
    const result = /result="([^"]*)"/.exec(labels)?.[1] ?? '?';
    counts[result] = (counts[result] ?? 0) + Number(line.slice(close + 1).trim());
  }
  return counts;
}

function verificationProblems(auth: boolean, counts: Readonly<Record<string, number>>): string[] {
  const entries = Object.entries(counts).filter(([, n]) => n > 0);
  if (!auth) {
    return entries.length === 0 ? [] : [`the route without auth verified tokens: ${entries.map(([r, n]) => `${r}×${n}`).join(', ')}`];
  }
  const out: string[] = [];
  const failed = entries.filter(([r]) => r !== 'ok');
  if (failed.length > 0) out.push(`the gateway refused tokens: ${failed.map(([r, n]) => `${r}×${n}`).join(', ')}`);
  if ((counts.ok ?? 0) === 0) out.push('the gateway counted no verified token: the route was not authenticating');
  return out;
}
