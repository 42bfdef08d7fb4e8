// Loads the certificate/key pairs (and the client CA bundle) of one TLS listener from disk, checks
// them, and turns each pair into a ready `tls.SecureContext` plus the names SNI selects it by.
//
// Why check at load rather than let OpenSSL find out: OpenSSL accepts a mismatched key only to fail
// every handshake, and happily serves an expired certificate that every client then refuses. Both
// look like a network problem from outside. Refusing them here turns them into one config error
// naming the file, at start (the gateway does not start) or at `kill -HUP` (the old certificates
// stay). What is refused:
//   - an unreadable file, a file without a PEM certificate / private key, an encrypted key (the
//     gateway has nowhere to get a passphrase from: protect the key file by its permissions);
//   - a key that does not belong to the certificate (`X509Certificate.checkPrivateKey`);
//   - an expired certificate (the first one of the file, the one clients see). An expired
//     certificate fails every handshake of a verifying client, so starting with it only hides the
//     outage until the first request; refusing it makes the failed renewal visible where the
//     operator is looking;
//   - an RSA key under 2048 bits (refused by browsers and by OpenSSL 3 at its default security
//     level), a key type that cannot sign a handshake (DSA, DH, X25519);
//   - a client CA file with no certificate, or only expired ones.
// What is only a warning (returned, for the caller to log): a certificate not yet valid (clock
// skew or a fresh certificate), one expiring within EXPIRY_WARNING_DAYS, a chain in the wrong
// order or with an expired intermediate, SAN entries SNI cannot use, names already served by an
// earlier pair, a non-default pair no name can reach.
//
// Names: the DNS names and IP addresses of the subjectAltName extension. The subject's common name
// is used only when the certificate has neither (clients ignore the CN when a SAN is present).
//
// Cost: only at start and reload: two small file reads, one PEM parse and one SecureContext (a key
// parse, ~1 ms for RSA-2048) per pair. Nothing here runs per handshake.

import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { ListenerTlsConfig } from '../config/types.js';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { normalizeServerName, type NamedEntry } from './sni.js';

/** Smallest RSA modulus accepted, in bits. */
export const MIN_RSA_BITS = 2048;
/** A certificate expiring sooner than this is loaded with a warning. */
export const EXPIRY_WARNING_DAYS = 14;

const DAY_MS = 24 * 60 * 60 * 1000;
const SIGNING_KEY_TYPES = new Set(['rsa', 'rsa-pss', 'ec', 'ed25519', 'ed448']);
const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
// A host name as SNI compares it; an optional leading `*.` for a one-label wildcard.
const HOST_NAME = /^(?:\*\.)?[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/;

/** One certificate/key pair, checked and ready to answer handshakes. */
export interface LoadedCertificate extends NamedEntry {
  /** Position in the listener's `certificates` list; 0 is the default. */
  readonly index: number;
  readonly certFile: string;
  readonly keyFile: string;
  /** The certificate file as read: the leaf, then any intermediates. */
  readonly certPem: Buffer;
  readonly keyPem: Buffer;
  /** Of the leaf, as `X509Certificate.subject` gives it (`CN=...`, one attribute per line). */
  readonly subject: string;
  readonly issuer: string;
  /** DNS names of the SAN, normalised (lower-cased, no trailing dot); may start with `*.`. */
  readonly dnsNames: readonly string[];
  /** IP addresses of the SAN, in canonical text form (`::1`, not `0:0:0:0:0:0:0:1`). */
  readonly ipAddresses: readonly string[];
  /** What SNI selects this pair by: the SAN's DNS names and IPs, or the CN when there is no SAN. */
  readonly names: readonly string[];
  readonly namesFrom: 'subjectAltName' | 'commonName' | 'none';
  /** e.g. `rsa 2048`, `ec prime256v1`, `ed25519`. */
  readonly keyType: string;
  readonly validFrom: Date;
  readonly validTo: Date;
  readonly fingerprint256: string;
  readonly context: SecureContext;
}

export interface LoadedClientCa {
  readonly file: string;
  /** The bundle as read; every certificate in it is a trust anchor for client certificates. */
  readonly pem: Buffer;
  readonly subjects: readonly string[];
}

/** Everything one TLS listener serves with, loaded from its files at one moment. */
export interface CertificateSet {
  readonly tls: ListenerTlsConfig;
  /** In configuration order; never empty. */
  readonly certificates: readonly LoadedCertificate[];
  readonly clientCa: LoadedClientCa | null;
  /** Problems that did not stop the load (see the header); for the caller to log. */
  readonly warnings: readonly ConfigIssue[];
}

/** Settings every SecureContext of a listener shares, so SNI contexts behave like the default. */
export interface ContextSettings {
  /**
   * Names the listener's TLS sessions. Node gives a server's own context one but not contexts
   * made by createSecureContext; every context of a listener gets the same, so a session means
   * the same thing whichever context (SNI or default) accepted it.
   */
  readonly sessionIdContext: string;
  /** 48 bytes; shared by all contexts of one load so a session ticket is valid across them. */
  readonly ticketKeys: Buffer;
}

export interface LoadOptions {
  /** Field path of the listener's `tls` block in messages, e.g. `listeners[0].tls`. */
  readonly path?: string;
  /** The gateway config file, named by problems that are not about one file; '' by default. */
  readonly configFile?: string;
  /** Milliseconds since the epoch to check validity against; `Date.now()` by default. */
  readonly now?: number;
  readonly context: ContextSettings;
}

/**
 * Reads and checks every file of `tls`, reporting all problems at once: throws a ConfigError whose
 * issues name each bad file (`issue.file`) and its field (`issue.path`). Never partially succeeds.
 */
export async function loadCertificateSet(tls: ListenerTlsConfig, options: LoadOptions): Promise<CertificateSet> {
  const path = options.path ?? 'tls';
  const now = options.now ?? Date.now();
  const issues: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const problem = (list: ConfigIssue[], file: string, field: string, message: string): void => {
    list.push({ file, line: 0, col: 0, path: field, message });
  };

  if (tls.certificates.length === 0) {
    problem(issues, options.configFile ?? '', `${path}.certificates`, 'at least one certificate is required');
  }

  const clientCa = tls.clientCa === null ? null : await loadClientCa(tls.clientCa, `${path}.clientCa`, now, issues, warnings, problem);

  // One pair after the other: the files are small, and issues then come in configuration order.
  const loaded: (CheckedPair | null)[] = [];
  for (const [index, pair] of tls.certificates.entries()) {
    loaded.push(await loadPair(pair.cert, pair.key, index, `${path}.certificates[${index}]`, now, issues, warnings, problem));
  }

  // Contexts (OpenSSL parses each pair again) are made only once every file has checked out.
  const certificates: LoadedCertificate[] = [];
  if (issues.length === 0) {
    for (const pair of loaded) {
      if (pair === null) continue;
      try {
        const context = createSecureContext({
          key: pair.keyPem,
          cert: pair.certPem,
          ...(clientCa === null ? {} : { ca: clientCa.pem }),
          minVersion: tls.minVersion,
          // Node's own server context prefers the server's cipher order; SNI contexts must agree.
          honorCipherOrder: true,
          sessionIdContext: options.context.sessionIdContext,
          ticketKeys: options.context.ticketKeys,
        });
        certificates.push({ ...pair, context });
      } catch (err) {
        problem(issues, pair.certFile, `${path}.certificates[${pair.index}].cert`, `OpenSSL refused this certificate with ${pair.keyFile}: ${messageOf(err)}`);
      }
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);

  reportOverlaps(certificates, path, warnings, problem);
  return { tls, certificates, clientCa, warnings };
}

type Problem = (list: ConfigIssue[], file: string, field: string, message: string) => void;
type CheckedPair = Omit<LoadedCertificate, 'context'>;

async function loadPair(
  certFile: string,
  keyFile: string,
  index: number,
  field: string,
  now: number,
  issues: ConfigIssue[],
  warnings: ConfigIssue[],
  problem: Problem,
): Promise<CheckedPair | null> {
  const certField = `${field}.cert`;
  const keyField = `${field}.key`;
  const [certPem, keyPem] = await Promise.all([readOrReport(certFile, certField, 'certificate', issues, problem), readOrReport(keyFile, keyField, 'private key', issues, problem)]);

  let chain: X509Certificate[] | null = null;
  if (certPem !== null) chain = parseCertificates(certPem, certFile, certField, issues, problem);
  let key: KeyObject | null = null;
  if (keyPem !== null) key = parsePrivateKey(keyPem, keyFile, keyField, issues, problem);
  if (chain === null || key === null || certPem === null || keyPem === null) return null;

  const leaf = chain[0]!;
  let ok = true;
  if (!leaf.checkPrivateKey(key)) {
    problem(issues, keyFile, keyField, `this key does not belong to the certificate ${certFile} (${subjectLine(leaf)})`);
    ok = false;
  }
  const keyType = describeKey(key);
  const keyProblem = keyStrengthProblem(key);
  if (keyProblem !== null) {
    problem(issues, keyFile, keyField, keyProblem);
    ok = false;
  }
  const validFrom = new Date(leaf.validFrom);
  const validTo = new Date(leaf.validTo);
  if (validTo.getTime() <= now) {
    problem(issues, certFile, certField, `the certificate (${subjectLine(leaf)}) expired on ${validTo.toISOString()}; clients refuse it`);
    ok = false;
  } else {
    if (validFrom.getTime() > now) {
      problem(warnings, certFile, certField, `the certificate (${subjectLine(leaf)}) is not valid before ${validFrom.toISOString()}: check the clock`);
    }
    const left = validTo.getTime() - now;
    if (left < EXPIRY_WARNING_DAYS * DAY_MS) {
      problem(warnings, certFile, certField, `the certificate (${subjectLine(leaf)}) expires in ${Math.floor(left / DAY_MS)} days, on ${validTo.toISOString()}`);
    }
  }
  checkChain(chain, now, certFile, certField, warnings, problem);
  if (!ok) return null;

  const san = readSubjectAltName(leaf.subjectAltName);
  for (const bad of san.unusable) {
    problem(warnings, certFile, certField, `the SAN entry DNS:${JSON.stringify(bad)} is ignored: SNI cannot match it (not a host name, or a wildcard that is not the whole leftmost label)`);
  }
  let names: string[] = [...san.dnsNames, ...san.ipAddresses];
  let namesFrom: LoadedCertificate['namesFrom'] = 'subjectAltName';
  if (names.length === 0) {
    const cn = commonName(leaf.subject);
    const name = cn === null ? null : usableName(cn);
    names = name === null ? [] : [name];
    namesFrom = name === null ? 'none' : 'commonName';
  }
  if (namesFrom === 'none' && index > 0) {
    problem(warnings, certFile, certField, 'the certificate has no DNS name or IP address, so SNI never selects it (only the first certificate is a default)');
  }

  return {
    index,
    certFile,
    keyFile,
    certPem,
    keyPem,
    subject: leaf.subject,
    issuer: leaf.issuer,
    dnsNames: san.dnsNames,
    ipAddresses: san.ipAddresses,
    names,
    namesFrom,
    keyType,
    validFrom,
    validTo,
    fingerprint256: leaf.fingerprint256,
  };
}

async function loadClientCa(
  file: string,
  field: string,
  now: number,
  issues: ConfigIssue[],
  warnings: ConfigIssue[],
  problem: Problem,
): Promise<LoadedClientCa | null> {
  const pem = await readOrReport(file, field, 'client CA bundle', issues, problem);
  if (pem === null) return null;
  const certs = parseCertificates(pem, file, field, issues, problem);
  if (certs === null) return null;
  const live = certs.filter((cert) => new Date(cert.validTo).getTime() > now);
  if (live.length === 0) {
    problem(issues, file, field, `every certificate of the client CA bundle has expired (${certs.map(subjectLine).join('; ')}): no client certificate could be verified`);
    return null;
  }
  for (const cert of certs) {
    if (!live.includes(cert)) problem(warnings, file, field, `the client CA ${subjectLine(cert)} expired on ${new Date(cert.validTo).toISOString()}`);
  }
  return { file, pem, subjects: certs.map((cert) => cert.subject) };
}

async function readOrReport(file: string, field: string, what: string, issues: ConfigIssue[], problem: Problem): Promise<Buffer | null> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problem(issues, file, field, `cannot read the ${what} file (${code ?? messageOf(err)})`);
    return null;
  }
}

function parseCertificates(pem: Buffer, file: string, field: string, issues: ConfigIssue[], problem: Problem): X509Certificate[] | null {
  const blocks = pem.toString('latin1').match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) {
    problem(issues, file, field, 'no PEM certificate (-----BEGIN CERTIFICATE-----) in this file');
    return null;
  }
  const certs: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      certs.push(new X509Certificate(block));
    } catch (err) {
      problem(issues, file, field, `certificate #${i + 1} of this file cannot be parsed: ${messageOf(err)}`);
      return null;
    }
  }
  return certs;
}

function parsePrivateKey(pem: Buffer, file: string, field: string, issues: ConfigIssue[], problem: Problem): KeyObject | null {
  // OpenSSL's error for a missing passphrase is "interrupted or cancelled": recognise the PEM forms.
  const text = pem.toString('latin1');
  if (text.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || text.includes('Proc-Type: 4,ENCRYPTED')) {
    problem(issues, file, field, 'the private key is encrypted; the gateway cannot ask for a passphrase: store it unencrypted and restrict the file permissions');
    return null;
  }
  try {
    return createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    problem(issues, file, field, `no usable PEM private key in this file: ${messageOf(err)}`);
    return null;
  }
}

function describeKey(key: KeyObject): string {
  const details = key.asymmetricKeyDetails;
  const type = key.asymmetricKeyType ?? 'unknown';
  if (details?.modulusLength !== undefined) return `${type} ${details.modulusLength}`;
  if (details?.namedCurve !== undefined) return `${type} ${details.namedCurve}`;
  return type;
}

function keyStrengthProblem(key: KeyObject): string | null {
  const type = key.asymmetricKeyType ?? 'unknown';
  if (!SIGNING_KEY_TYPES.has(type)) return `a ${type} key cannot sign TLS 1.2/1.3 handshakes; use RSA (${MIN_RSA_BITS}+ bits) or ECDSA`;
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if ((type === 'rsa' || type === 'rsa-pss') && bits !== undefined && bits < MIN_RSA_BITS) {
    return `the RSA key has ${bits} bits; at least ${MIN_RSA_BITS} are required (clients refuse smaller keys)`;
  }
  return null;
}

/** Intermediates: each certificate should be issued by the next one, and none expired. */
function checkChain(chain: readonly X509Certificate[], now: number, file: string, field: string, warnings: ConfigIssue[], problem: Problem): void {
  for (let i = 1; i < chain.length; i++) {
    const cert = chain[i]!;
    if (!chain[i - 1]!.checkIssued(cert)) {
      problem(warnings, file, field, `certificate #${i + 1} of this file (${subjectLine(cert)}) did not issue #${i}: list the leaf first, then each issuer; clients may fail to build the chain`);
    }
    if (new Date(cert.validTo).getTime() <= now) {
      problem(warnings, file, field, `the chain certificate #${i + 1} (${subjectLine(cert)}) expired on ${new Date(cert.validTo).toISOString()}`);
    }
  }
}

interface SubjectAltNames {
  readonly dnsNames: string[];
  readonly ipAddresses: string[];
  /** DNS entries SNI cannot match (a partial or inner wildcard, odd characters), as written. */
  readonly unusable: string[];
}

/**
 * Splits `X509Certificate.subjectAltName` (`DNS:a.example.com, IP Address:127.0.0.1, ...`).
 * Node writes a value containing a separator or quote as a JSON string, so the split honours
 * quotes. Entries other than DNS and IP (email, URI, ...) play no part in SNI and are skipped.
 */
export function readSubjectAltName(text: string | undefined): SubjectAltNames {
  const out: SubjectAltNames = { dnsNames: [], ipAddresses: [], unusable: [] };
  if (text === undefined) return out;
  for (const { type, value } of splitAltNames(text)) {
    if (type === 'DNS') {
      const name = usableName(value);
      if (name === null || isIP(name) !== 0) out.unusable.push(value);
      else if (!out.dnsNames.includes(name)) out.dnsNames.push(name);
    } else if (type === 'IP Address') {
      const ip = canonicalIp(value);
      if (ip !== null && !out.ipAddresses.includes(ip)) out.ipAddresses.push(ip);
    }
  }
  return out;
}

function splitAltNames(text: string): { type: string; value: string }[] {
  const entries: { type: string; value: string }[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const type = text.slice(i, colon);
    let j = colon + 1;
    let value: string;
    if (text[j] === '"') {
      let k = j + 1;
      while (k < text.length && text[k] !== '"') k += text[k] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(text.slice(j, k + 1)) as string;
      } catch {
        value = text.slice(j, k + 1);
      }
      j = k + 1;
    } else {
      const comma = text.indexOf(', ', j);
      const end = comma < 0 ? text.length : comma;
      value = text.slice(j, end);
      j = end;
    }
    entries.push({ type, value });
    i = text.startsWith(', ', j) ? j + 2 : j;
  }
  return entries;
}

/** The normalised form of a DNS name or IP for the selector, or null when SNI could never match it. */
function usableName(raw: string): string | null {
  const ip = canonicalIp(raw);
  if (ip !== null) return ip;
  const name = normalizeServerName(raw);
  return HOST_NAME.test(name) ? name : null;
}

function canonicalIp(text: string): string | null {
  const kind = isIP(text);
  if (kind === 4) return text;
  if (kind !== 6) return null;
  // WHATWG URL parsing is the standard library's IPv6 canonicaliser (RFC 5952 form).
  return new URL(`http://[${text}]/`).hostname.slice(1, -1);
}

function commonName(subject: string): string | null {
  let cn: string | null = null;
  for (const line of subject.split('\n')) if (line.startsWith('CN=')) cn = line.slice(3);
  return cn;
}

function subjectLine(cert: X509Certificate): string {
  return cert.subject.split('\n').join(', ');
}

/** Names served by more than one pair: the first listed wins; say so where the loser is. */
function reportOverlaps(certificates: readonly LoadedCertificate[], path: string, warnings: ConfigIssue[], problem: Problem): void {
  const owner = new Map<string, LoadedCertificate>();
  for (const cert of certificates) {
    const shadowed: string[] = [];
    for (const name of cert.names) {
      const first = owner.get(name);
      if (first === undefined) owner.set(name, cert);
      else shadowed.push(`${name} (certificates[${first.index}])`);
    }
    if (shadowed.length > 0 && cert.index > 0) {
      const never = shadowed.length === cert.names.length ? '; SNI never selects this certificate' : '';
      problem(warnings, cert.certFile, `${path}.certificates[${cert.index}].cert`, `names already served by an earlier certificate, which wins: ${shadowed.join(', ')}${never}`);
    }
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
