// From a JSON Web Key Set (RFC 7517) to the keys a provider verifies with, imported once per key
// set rather than per token, each tied to the algorithms it may verify.
//
// Why the choice of algorithm belongs to the key and not to the token: a token names its `alg`, and
// a verifier that imports "whatever key has this kid" for "whatever alg the token says" is the
// classic confusion attack (HS256 with an RSA public key as the HMAC secret, `none`). Here a key is
// imported only for the algorithms that are (a) in the provider's allow-list, (b) of its type and
// curve (RSA: RS*/PS*, EC P-256/384/521: ES256/384/512, OKP Ed25519: EdDSA, oct: HS*), and (c) equal
// to its own `alg` when it has one; `use` other than `sig` or `key_ops` without `verify` leave it
// out. A token whose alg its key was not imported for never reaches a signature check.
//
// Symmetric (`oct`) keys are accepted only from a jwksFile: a secret served over HTTP would let
// whoever can fetch it sign tokens. RSA keys under 2048 bits and HMAC secrets shorter than their
// hash are refused here, at load, rather than by jose at request time.
//
// Keys keep their identity across loads: a key whose fingerprint (kid, kty, alg and public
// members) is unchanged is the same KeyEntry object, not re-imported, so tokens cached against it
// stay cached; a key that leaves the set is marked retired, which invalidates those tokens.
//
// Cost: per load, one importJWK per usable key and algorithm (new keys only). Nothing per request.

import { importJWK } from 'jose';
import type { JwtAlgorithm } from '../../src/config/types.js';

/** What jose verifies with: a CryptoKey for RSA/EC/OKP, the secret's bytes for HS*. */
export type VerificationKey = Awaited<ReturnType<typeof importJWK>>;

export interface KeyEntry {
  readonly kid: string | null;
  readonly kty: string;
  /** Equal fingerprints: the same key, usable in the same ways. */
  readonly fingerprint: string;
  /** The key imported for each algorithm it may verify; never empty. */
  readonly byAlg: ReadonlyMap<JwtAlgorithm, VerificationKey>;
  /**
   * Set (once, for good) when the key leaves its provider's key set: tokens verified with it and
   * still cached are then verified again, against the keys in use.
   */
  retired: boolean;
}

/** A key that could have served an accepted algorithm but cannot be used. */
export interface RejectedKey {
  readonly index: number; // position in `keys`
  readonly kid: string | null;
  readonly reason: string;
}

/** Not a JWKS at all: nothing in it can be used. */
export class JwksFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JwksFormatError';
  }
}

/** An immutable set of usable keys, indexed by kid. */
export class KeySet {
  static readonly EMPTY = new KeySet([]);

  readonly entries: readonly KeyEntry[];
  readonly #byKid = new Map<string, KeyEntry[]>();
  readonly #byFingerprint = new Map<string, KeyEntry>();

  constructor(entries: readonly KeyEntry[]) {
    this.entries = Object.freeze([...entries]);
    for (const entry of entries) {
      this.#byFingerprint.set(entry.fingerprint, entry);
      if (entry.kid === null) continue;
      const list = this.#byKid.get(entry.kid);
      if (list === undefined) this.#byKid.set(entry.kid, [entry]);
      else list.push(entry);
    }
  }

  get size(): number {
    return this.entries.length;
  }

  /** Every key carrying this kid (RFC 7517 allows several, e.g. of different types). */
  withKid(kid: string): readonly KeyEntry[] | undefined {
    return this.#byKid.get(kid);
  }

  byFingerprint(fingerprint: string): KeyEntry | undefined {
    return this.#byFingerprint.get(fingerprint);
  }

  /** Same keys (as objects: unchanged keys are reused by buildKeys), in any order. */
  sameAs(other: KeySet): boolean {
    if (other.size !== this.size) return false;
    for (const entry of other.entries) if (this.#byFingerprint.get(entry.fingerprint) !== entry) return false;
    return true;
  }
}

interface Fit {
  readonly kty: 'RSA' | 'EC' | 'OKP' | 'oct';
  readonly crv?: string;
  /** HS*: the shortest acceptable secret (RFC 7518 §3.2: at least the hash size). */
  readonly minSecretBits?: number;
}

const FITS: Readonly<Record<JwtAlgorithm, Fit>> = {
  RS256: { kty: 'RSA' }, RS384: { kty: 'RSA' }, RS512: { kty: 'RSA' },
  PS256: { kty: 'RSA' }, PS384: { kty: 'RSA' }, PS512: { kty: 'RSA' },
  ES256: { kty: 'EC', crv: 'P-256' }, ES384: { kty: 'EC', crv: 'P-384' }, ES512: { kty: 'EC', crv: 'P-521' },
  EdDSA: { kty: 'OKP', crv: 'Ed25519' },
  HS256: { kty: 'oct', minSecretBits: 256 }, HS384: { kty: 'oct', minSecretBits: 384 }, HS512: { kty: 'oct', minSecretBits: 512 },
};

/** The public members of each key type: what is imported and what identifies the key. */
const PUBLIC_MEMBERS: Readonly<Record<Fit['kty'], readonly string[]>> = {
  RSA: ['e', 'n'],
  EC: ['crv', 'x', 'y'],
  OKP: ['crv', 'x'],
  oct: ['k'],
};

export const MIN_RSA_BITS = 2048;

export interface BuildOptions {
  readonly algorithms: readonly JwtAlgorithm[];
  /** Only a jwksFile may hold `oct` keys. */
  readonly allowSymmetric: boolean;
  /** The set in use: its unchanged keys are reused as they are. */
  readonly previous: KeySet | null;
}

export interface BuiltKeys {
  readonly set: KeySet;
  readonly rejected: readonly RejectedKey[];
}

/**
 * The usable keys of a parsed JWKS document. Throws JwksFormatError when `document` is not a JWKS
 * (not an object with a `keys` array); a key that cannot be used is listed in `rejected` and left
 * out. An empty set is returned as such: whether that is acceptable is the caller's decision.
 */
export async function buildKeys(document: unknown, options: BuildOptions): Promise<BuiltKeys> {
  if (!isRecord(document)) throw new JwksFormatError('not a JWKS: the document is not a JSON object');
  const keys = document['keys'];
  if (!Array.isArray(keys)) throw new JwksFormatError('not a JWKS: no "keys" array');
  const entries: KeyEntry[] = [];
  const seen = new Set<string>();
  const rejected: RejectedKey[] = [];
  for (let index = 0; index < keys.length; index++) {
    const outcome = await buildKey(keys[index], options);
    if (outcome === null) continue;
    if ('reason' in outcome) {
      rejected.push({ index, kid: outcome.kid, reason: outcome.reason });
      continue;
    }
    if (seen.has(outcome.fingerprint)) continue; // listed twice: one key
    seen.add(outcome.fingerprint);
    entries.push(outcome);
  }
  return { set: new KeySet(entries), rejected };
}

type KeyOutcome = KeyEntry | { readonly kid: string | null; readonly reason: string } | null;

/** A usable key, a rejection, or null for a key meant for something else (ignored). */
async function buildKey(jwk: unknown, options: BuildOptions): Promise<KeyOutcome> {
  if (!isRecord(jwk)) return { kid: null, reason: 'not a JSON object' };
  const rawKid = jwk['kid'];
  if (rawKid !== undefined && typeof rawKid !== 'string') return { kid: null, reason: '"kid" is not a string' };
  const kid = rawKid ?? null;
  const fail = (reason: string): KeyOutcome => ({ kid, reason });

  const { kty, use, alg, key_ops: keyOps } = jwk;
  if (typeof kty !== 'string') return fail('no "kty"');
  if (use !== undefined && use !== 'sig') return null; // an encryption key
  if (keyOps !== undefined) {
    if (!Array.isArray(keyOps)) return fail('"key_ops" is not an array');
    if (!keyOps.includes('verify')) return null;
  }
  if (alg !== undefined && typeof alg !== 'string') return fail('"alg" is not a string');
  const crv = jwk['crv'];
  const algorithms = options.algorithms.filter((a) => {
    const fit = FITS[a];
    return fit.kty === kty && (fit.crv === undefined || fit.crv === crv) && (alg === undefined || alg === a);
  });
  if (algorithms.length === 0) return null; // for no algorithm this provider accepts
  if (kty === 'oct' && !options.allowSymmetric) {
    return fail('a symmetric (oct) key in a fetched JWKS is never used: whoever can read it could sign tokens');
  }

  // Only the public members: a private JWK published by mistake still verifies, and its private
  // part never enters the fingerprint or a CryptoKey.
  const members = PUBLIC_MEMBERS[kty as Fit['kty']];
  const publicJwk: Record<string, unknown> = { kty };
  for (const member of members) {
    const value = jwk[member];
    if (typeof value !== 'string') return fail(`"${member}" is missing or not a string`);
    publicJwk[member] = value;
  }
  const fingerprint = JSON.stringify([kid, kty, alg ?? null, ...members.map((m) => publicJwk[m])]);
  const known = options.previous?.byFingerprint(fingerprint);
  if (known !== undefined) return known;

  const byAlg = new Map<JwtAlgorithm, VerificationKey>();
  const tooShort: string[] = [];
  let secretBits = 0;
  for (const algorithm of algorithms) {
    let key: VerificationKey;
    try {
      key = await importJWK(publicJwk, algorithm);
    } catch (err) {
      return fail(`does not import for ${algorithm}: ${describe(err)}`);
    }
    if (key instanceof Uint8Array) {
      secretBits = key.length * 8;
      const min = FITS[algorithm].minSecretBits ?? 0;
      if (secretBits < min) {
        tooShort.push(`${algorithm} needs ${min}`);
        continue;
      }
    } else if (kty === 'RSA') {
      const bits = (key.algorithm as { modulusLength?: unknown }).modulusLength;
      if (typeof bits !== 'number' || bits < MIN_RSA_BITS) {
        return fail(`RSA key of ${String(bits)} bits: at least ${MIN_RSA_BITS} are required`);
      }
    }
    byAlg.set(algorithm, key);
  }
  if (byAlg.size === 0) return fail(`secret of ${secretBits} bits is too short: ${tooShort.join(', ')} bits`);
  return { kid, kty, fingerprint, byAlg, retired: false };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
