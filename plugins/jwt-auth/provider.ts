// One JWT issuer (a `jwtProviders` entry): its current key set and the verification of its tokens.
//
// Keys. A jwksFile provider gets its keys from the registry, which (re)reads the file on every
// load and reload. A jwksUri provider fetches its own: at start, then in the background at ~80 %
// (±5 %, jittered so that gateway processes do not fetch in step) of jwksCacheMaxAge after each
// success, and after a failure again with a backoff (1 s, 2 s, 4 s … capped at 5 min and at the
// refresh delay). A failed fetch — network, timeout, status, size, not JSON, not a JWKS, no key that
// imports — changes nothing: the last good keys keep working, however old (an IdP outage must not
// become a gateway outage; rotating a key out takes a successful fetch). A usable set replaces the
// current one: new keys come in, keys it no longer lists go, keys that did not change keep their
// identity (see keys.ts), and a key it still lists by kid but that no longer imports is kept as it
// was (garbage never replaces a good key). Rejected keys are reported one by one.
//
// Unknown kid. A token naming a kid the set lacks usually means the issuer rotated in a new key.
// It triggers one fetch — single-flight: requests that arrive while a fetch (of any kind) is in
// flight wait for that one — and at most one per jwksRefetchCooldown, counted from the start of the
// last fetch of any kind, so neither a burst of such tokens nor a forger cycling random kids can
// make the gateway hammer the IdP. Waiting is bounded (unknownKidWaitMs, 2 s by default, from the
// start of the fetch): then the request fails as unknown_kid and the fetch carries on. Only tokens
// whose (still unverified) `iss` is this provider's issuer can trigger it.
//
// Verification cache. A verified token is kept (LRU, 10 000 by default) with its frozen claims,
// its forwarded header values, the key that verified it and the instant it stops being valid: `exp`
// plus the clock skew, rounded as jose rounds, so the cache never outlives what jose would accept.
// It is dropped when its key leaves the set (rotation: the key's `retired` flag) or it expires; the
// token is then verified again, so a retired key or an expired token is never accepted from the
// cache. Only successes are cached; tokens longer than 8 KiB are verified every time (memory bound:
// 10 000 × 8 KiB). The Map key is the token's last 64 characters (within its signature), and a hit
// must equal the whole token: each request brings a fresh string and V8 hashes all of a string
// used as a key (~0.6 µs for a 440-character ES256 token, more for RS256), while a suffix costs a
// fixed ~0.1 µs and the equality check less. A forged token sharing a suffix only misses.
//
// Cost per request: cache hit ~0.3 µs (suffix, Map lookup, string compare, clock read), no
// signature check and no promise. Miss: jose decodes header and payload and checks one signature —
// measured on Node 20's WebCrypto at ~110 µs for RS256, ~165 µs for EdDSA, ~220 µs for ES256,
// nearly all of it jose/WebCrypto. Background: one fetch per ~0.8 × jwksCacheMaxAge per provider,
// on an undici Agent of its own; timers are unref()ed.

import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import { Agent } from 'undici';
import type { JwtAlgorithm, JwtProviderConfig } from '../../src/config/types.js';
import { LruCache } from './cache.js';
import { deepFreeze, forwardedHeaders } from './claims.js';
import { type JwksFetchResult, type JwksFetchTrigger, type JwtEvents, type JwtFailure, report, SILENT_JWT_EVENTS } from './events.js';
import { buildKeys, describe, type KeyEntry, KeySet, type RejectedKey } from './keys.js';
import { fetchJwksDocument, JWKS_MAX_BYTES } from './source.js';

/** One fetch, from connect to the last body byte. */
export const JWKS_FETCH_TIMEOUT_MS = 5000;
/** How long a request with an unknown kid waits for the refetch it triggered (or joined). */
export const UNKNOWN_KID_WAIT_MS = 2000;
export const VERIFICATION_CACHE_SIZE = 10_000;
export const MAX_CACHED_TOKEN_LENGTH = 8 * 1024;
const CACHE_KEY_LENGTH = 64;

const REFRESH_AT = 0.8;
const REFRESH_JITTER = 0.05;
const RETRY_BASE_MS = 1000;
const RETRY_MAX_MS = 5 * 60_000;
const RETRY_JITTER = 0.1;
// setTimeout fires at once for anything above 2^31 - 1 ms.
const MAX_TIMER_MS = 0x7fffffff;

export interface JwtProviderOptions {
  readonly fetchTimeoutMs?: number;
  readonly maxJwksBytes?: number;
  readonly unknownKidWaitMs?: number;
  readonly cacheSize?: number;
  /** First retry delay after a failed fetch; doubles per failure in a row. */
  readonly retryBaseMs?: number;
  /** Wall clock (ms) for exp/nbf/iat; injectable for tests. */
  readonly now?: () => number;
  /** For the jitter of refresh and retry delays. */
  readonly random?: () => number;
}

/** A token that verified; shared (frozen) by every request that carries it while cached. */
export interface VerifiedToken {
  readonly ok: true;
  readonly claims: Readonly<JWTPayload>;
  readonly subject: string | null;
  /** [header, value] for the upstream, from forwardClaims. */
  readonly forwarded: readonly (readonly [string, string])[];
  /** The key that verified it: the cache entry dies when this key is retired. */
  readonly key: KeyEntry;
  /** Epoch ms from which it is expired (exp + clock skew); Infinity without exp. */
  readonly validUntilMs: number;
}

export interface FailedVerification {
  readonly ok: false;
  readonly result: JwtFailure;
  /** For logs only: never sent to the client. */
  readonly reason: string;
}

export type Verification = VerifiedToken | FailedVerification;

interface CacheSlot {
  readonly token: string;
  readonly verified: VerifiedToken;
}

const cacheKey = (token: string): string => (token.length > CACHE_KEY_LENGTH ? token.slice(-CACHE_KEY_LENGTH) : token);

const fail = (result: JwtFailure, reason: string): FailedVerification => ({ ok: false, result, reason });

/** Attacker-controlled text in a log line: quoted and cut short. */
const quote = (text: string): string => JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);

export class JwtProvider {
  /**
   * A provider's identity: equal keys mean one provider (its keys, its cache, its refresh loop)
   * serves both configs across a reload. Everything that changes what is fetched or accepted, or
   * what a cached verification holds (forwarded header values), is part of it; order-free lists
   * are sorted.
   */
  static keyOf(config: JwtProviderConfig): string {
    return JSON.stringify([
      'jwt',
      config.name,
      config.issuer,
      [...config.audiences].sort(),
      config.jwksUri,
      config.jwksFile,
      config.jwksCacheMaxAgeMs,
      config.jwksRefetchCooldownMs,
      [...config.algorithms].sort(),
      config.clockSkewMs,
      Object.entries(config.forwardClaims).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    ]);
  }

  readonly name: string;
  readonly config: JwtProviderConfig;
  readonly key: string;
  readonly #events: JwtEvents;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #fetchTimeoutMs: number;
  readonly #maxJwksBytes: number;
  readonly #unknownKidWaitMs: number;
  readonly #retryBaseMs: number;
  readonly #algorithms: ReadonlySet<string>;
  readonly #audience: string[] | undefined;
  readonly #skewS: number;
  readonly #cache: LruCache<string, CacheSlot>;
  #keys: KeySet = KeySet.EMPTY;
  #signatureChecks = 0;
  #fetches = 0;

  // Background fetching (jwksUri only).
  #running = false;
  /** Bumped by start() and stop(): a fetch that finishes under an older value is ignored. */
  #generation = 0;
  #agent: Agent | null = null;
  #timer: NodeJS.Timeout | null = null;
  #inflight: Promise<void> | null = null;
  /** Settles when the fetch in flight does, or unknownKidWaitMs after it started. */
  #inflightWait: Promise<void> | null = null;
  #lastFetchStartedAt = -Infinity; // performance.now()
  #failuresInRow = 0;
  readonly #ready: Promise<void>;
  #settleReady: () => void = () => {};

  constructor(config: JwtProviderConfig, events: JwtEvents = SILENT_JWT_EVENTS, options: JwtProviderOptions = {}) {
    if ((config.jwksUri === null) === (config.jwksFile === null)) {
      throw new Error(`JWT provider "${config.name}": set exactly one of jwksUri and jwksFile`);
    }
    this.name = config.name;
    this.config = config;
    this.key = JwtProvider.keyOf(config);
    this.#events = events;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#fetchTimeoutMs = options.fetchTimeoutMs ?? JWKS_FETCH_TIMEOUT_MS;
    this.#maxJwksBytes = options.maxJwksBytes ?? JWKS_MAX_BYTES;
    this.#unknownKidWaitMs = options.unknownKidWaitMs ?? UNKNOWN_KID_WAIT_MS;
    this.#retryBaseMs = options.retryBaseMs ?? RETRY_BASE_MS;
    this.#algorithms = new Set(config.algorithms);
    this.#audience = config.audiences.length === 0 ? undefined : [...config.audiences];
    this.#skewS = config.clockSkewMs / 1000;
    this.#cache = new LruCache(options.cacheSize ?? VERIFICATION_CACHE_SIZE);
    this.#ready = new Promise((resolve) => {
      this.#settleReady = resolve;
    });
  }

  /** The keys in use. */
  get keys(): KeySet {
    return this.#keys;
  }

  /** Signature checks started (calls into jose's jwtVerify): what the cache saves. */
  get signatureChecks(): number {
    return this.#signatureChecks;
  }

  /** JWKS fetches started (jwksUri). */
  get fetches(): number {
    return this.#fetches;
  }

  get cachedTokens(): number {
    return this.#cache.size;
  }

  /**
   * Makes `set` the keys in use; keys of the old set that it lacks are retired (their cached
   * tokens die). Returns false, changing nothing, when it holds the same keys.
   */
  install(set: KeySet): boolean {
    const old = this.#keys;
    if (old.sameAs(set)) return false;
    this.#keys = set;
    for (const entry of old.entries) if (set.byFingerprint(entry.fingerprint) !== entry) entry.retired = true;
    return true;
  }

  /** jwksUri: fetches now, then keeps the keys fresh. jwksFile: nothing (the registry loads it). */
  start(): void {
    if (this.config.jwksUri === null) {
      this.#settleReady();
      return;
    }
    if (this.#running) return;
    this.#running = true;
    this.#generation++;
    // A connect that cannot finish within the fetch timeout fails the fetch; one connection is
    // enough since fetches are single-flight.
    this.#agent = new Agent({ connect: { timeout: this.#fetchTimeoutMs }, connections: 1 });
    this.#fetch('initial');
  }

  /**
   * Ends background fetching (a fetch in flight is abandoned, its result ignored) and closes the
   * connection. The keys and the cache stay: requests of a retiring snapshot still verify.
   */
  stop(): void {
    this.#settleReady();
    if (!this.#running) return;
    this.#running = false;
    this.#generation++;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#inflight = null;
    this.#inflightWait = null;
    const agent = this.#agent;
    this.#agent = null;
    // destroy, not close: a fetch in flight was abandoned anyway.
    agent?.destroy().catch(() => {});
  }

  /** Settles after the first fetch (success or failure), or at once for a jwksFile. Never rejects. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /**
   * Verifies a compact JWS token: synchronously when cached (the hot path: no promise), otherwise
   * through jose. Never rejects.
   */
  verify(token: string): Verification | Promise<Verification> {
    const slotKey = cacheKey(token);
    const slot = this.#cache.get(slotKey);
    if (slot !== undefined && slot.token === token) {
      const hit = slot.verified;
      if (!hit.key.retired && this.#now() < hit.validUntilMs) return hit;
      this.#cache.delete(slotKey);
    }
    return this.#verifyUncached(token);
  }

  async #verifyUncached(token: string): Promise<Verification> {
    let alg: unknown;
    let kid: unknown;
    let issuer: unknown;
    try {
      ({ alg, kid } = decodeProtectedHeader(token));
      issuer = decodeJwt(token).iss;
    } catch (err) {
      return fail('malformed', describe(err));
    }
    if (typeof alg !== 'string') return fail('malformed', 'no "alg" in the header');
    // `none` and anything not listed end here, before any key is looked at.
    if (!this.#algorithms.has(alg)) return fail('invalid_signature', `alg ${quote(alg)} is not allowed`);
    if (kid !== undefined && typeof kid !== 'string') return fail('malformed', '"kid" is not a string');
    // Unverified, so checked again by jwtVerify; here it keeps other issuers' tokens from
    // triggering fetches.
    if (issuer !== this.config.issuer) return fail('invalid_claims', 'unexpected "iss" claim value');

    const algorithm = alg as JwtAlgorithm;
    let candidates = this.#candidates(kid, algorithm);
    if (candidates === null && kid !== undefined) {
      await this.#refetchForUnknownKid();
      candidates = this.#candidates(kid, algorithm);
    }
    if (candidates === null) {
      return fail('unknown_kid', kid === undefined ? `no kid, and no key for ${alg}` : `no key with kid ${quote(kid)}`);
    }
    // The kid exists but was not imported for this alg: e.g. HS256 naming an RSA key.
    if (candidates.length === 0) return fail('invalid_signature', `key ${quote(kid ?? '')} is not usable with ${alg}`);

    let last: FailedVerification = fail('invalid_signature', 'no key verifies the signature');
    for (const entry of candidates) {
      const key = entry.byAlg.get(algorithm)!;
      const now = this.#now();
      this.#signatureChecks++;
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms: [algorithm],
          issuer: this.config.issuer,
          audience: this.#audience,
          clockTolerance: this.#skewS,
          currentDate: new Date(now),
        });
        return this.#accept(token, payload, entry, now);
      } catch (err) {
        last = classify(err);
        // A signature that verified makes every other candidate moot; only a signature that did
        // not verify lets the next key with this kid (or of this type, without kid) try.
        if (last.result !== 'invalid_signature') return last;
      }
    }
    return last;
  }

  /** Keys usable with `alg` (empty: the kid exists, not for this alg), or null: none known. */
  #candidates(kid: string | undefined, alg: JwtAlgorithm): readonly KeyEntry[] | null {
    if (kid !== undefined) {
      const withKid = this.#keys.withKid(kid);
      return withKid === undefined ? null : withKid.filter((entry) => entry.byAlg.has(alg));
    }
    const usable = this.#keys.entries.filter((entry) => entry.byAlg.has(alg));
    return usable.length === 0 ? null : usable;
  }

  #accept(token: string, payload: JWTPayload, key: KeyEntry, now: number): Verification {
    // jose checks iat only together with maxTokenAge; a token issued in the future is refused
    // with the same tolerance as nbf.
    if (typeof payload.iat === 'number' && payload.iat > Math.floor(now / 1000) + this.#skewS) {
      return fail('invalid_claims', '"iat" claim is in the future');
    }
    const claims = deepFreeze(payload);
    const verified: VerifiedToken = Object.freeze({
      ok: true,
      claims,
      subject: typeof claims.sub === 'string' ? claims.sub : null,
      forwarded: forwardedHeaders(claims, this.config.forwardClaims),
      key,
      // jose accepts while floor(now s) < exp + skew, i.e. while now ms < ceil(exp + skew) s.
      validUntilMs: typeof claims.exp === 'number' ? Math.ceil(claims.exp + this.#skewS) * 1000 : Infinity,
    });
    if (token.length <= MAX_CACHED_TOKEN_LENGTH) this.#cache.set(cacheKey(token), { token, verified });
    return verified;
  }

  /** Resolves when a fetch this request may wait for has ended, or at once when none may start. */
  async #refetchForUnknownKid(): Promise<void> {
    if (!this.#running) return;
    if (this.#inflight === null) {
      if (performance.now() - this.#lastFetchStartedAt < this.config.jwksRefetchCooldownMs) return;
      this.#fetch('unknown_kid');
    }
    await this.#inflightWait;
  }

  /** Starts a fetch unless one is in flight (single-flight). */
  #fetch(trigger: JwksFetchTrigger): void {
    const agent = this.#agent;
    if (this.#inflight !== null || agent === null) return;
    this.#lastFetchStartedAt = performance.now();
    // The fetch's end arms the next one.
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const done = this.#fetchOnce(trigger, this.#generation, agent);
    this.#inflight = done;
    this.#inflightWait = new Promise<void>((resolve) => {
      const bound = setTimeout(resolve, this.#unknownKidWaitMs);
      bound.unref();
      void done.then(() => {
        clearTimeout(bound);
        resolve();
      });
    });
    void done.then(() => {
      if (this.#inflight !== done) return;
      this.#inflight = null;
      this.#inflightWait = null;
    });
  }

  /**
   * A key the endpoint still lists (by kid) but that no longer imports is kept as it was: a broken
   * entry must not take a good key out of service. Keys it no longer lists at all do go.
   */
  #withKeptKeys(set: KeySet, rejected: readonly RejectedKey[]): KeySet {
    const kept: KeyEntry[] = [];
    for (const { kid } of rejected) {
      if (kid === null || set.withKid(kid) !== undefined) continue;
      for (const entry of this.#keys.withKid(kid) ?? []) if (!kept.includes(entry)) kept.push(entry);
    }
    return kept.length === 0 ? set : new KeySet([...set.entries, ...kept]);
  }

  /** One fetch, its verdict reported and applied. Never rejects. */
  async #fetchOnce(trigger: JwksFetchTrigger, generation: number, agent: Agent): Promise<void> {
    const started = performance.now();
    const uri = this.config.jwksUri!;
    this.#fetches++;
    let set: KeySet | null = null;
    let rejected: readonly RejectedKey[] = [];
    let reason: string | null = null;
    try {
      const document = await fetchJwksDocument(uri, agent, this.#fetchTimeoutMs, this.#maxJwksBytes);
      const built = await buildKeys(document, { algorithms: this.config.algorithms, allowSymmetric: false, previous: this.#keys });
      rejected = built.rejected;
      if (built.set.size > 0) set = this.#withKeptKeys(built.set, rejected);
      else reason = rejected.length === 0 ? 'no usable key in the JWKS' : `no usable key in the JWKS (${rejected.length} rejected)`;
    } catch (err) {
      reason = describe(err);
    }
    if (generation !== this.#generation) return;

    for (const key of rejected) report(() => this.#events.keyRejected(this.name, key.kid, key.reason));
    let result: JwksFetchResult;
    let delayMs: number;
    const refreshMs = this.config.jwksCacheMaxAgeMs * REFRESH_AT;
    if (set !== null) {
      result = this.install(set) ? 'success' : 'unchanged';
      this.#failuresInRow = 0;
      delayMs = refreshMs * (1 + (this.#random() * 2 - 1) * (REFRESH_JITTER / REFRESH_AT));
    } else {
      result = 'failure';
      this.#failuresInRow++;
      const backoff = this.#retryBaseMs * 2 ** Math.min(this.#failuresInRow - 1, 30);
      delayMs = Math.min(backoff, RETRY_MAX_MS, refreshMs) * (1 + (this.#random() * 2 - 1) * RETRY_JITTER);
    }
    const detail = { trigger, source: uri, keys: this.#keys.size, reason, durationMs: performance.now() - started };
    report(() => this.#events.jwksFetch(this.name, result, detail));
    this.#settleReady();
    if (this.#running) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#fetch('refresh');
      }, Math.min(Math.max(delayMs, 0), MAX_TIMER_MS));
      this.#timer.unref();
    }
  }
}

/** jose's verdict → a verification result. */
function classify(err: unknown): FailedVerification {
  if (err instanceof errors.JWTExpired) return fail('expired', err.message);
  if (err instanceof errors.JWTClaimValidationFailed) return fail('invalid_claims', err.message);
  if (err instanceof errors.JWSSignatureVerificationFailed) return fail('invalid_signature', err.message);
  if (err instanceof errors.JOSEAlgNotAllowed) return fail('invalid_signature', err.message);
  return fail('malformed', describe(err));
}
