// Who a client is, for routes behind mTLS: the subject of the certificate the client presented,
// once OpenSSL has verified it against the listener's client CA.
//
// Why only verified certificates: `getPeerCertificate()` also returns a certificate that failed
// verification (on a server that does not reject them), and a subject nobody vouched for must
// never reach an authorisation decision. With `rejectUnauthorized: true` (what TlsTerminator sets
// for mTLS) such a handshake never completes anyway; the check here does not rely on it.
//
// Cost: the first call on a connection parses the DER certificate once (X509Certificate); later
// calls on the same socket (keep-alive requests, HTTP/2 streams) are one WeakMap lookup.

import { X509Certificate } from 'node:crypto';

/** The verified client certificate's identity. */
export interface ClientIdentity {
  /** The subject distinguished name, one line, attributes in certificate order: `O=Acme, CN=svc-a`. */
  readonly subject: string;
  /** The last CN of the subject, or null. */
  readonly commonName: string | null;
  readonly issuer: string;
  /** As `X509Certificate.subjectAltName` gives it (`DNS:a, URI:spiffe://...`), or null. */
  readonly subjectAltName: string | null;
  readonly serialNumber: string;
  /** SHA-256 fingerprint, colon-separated upper-case hex: pins one certificate. */
  readonly fingerprint256: string;
  readonly validTo: Date;
}

/** What is needed of a socket: a TLSSocket, or the socket an HTTP/2 compatibility request exposes. */
interface PeerSocket {
  readonly authorized?: boolean;
  getPeerCertificate?(detailed?: boolean): { readonly raw?: Buffer } | null;
}

const cache = new WeakMap<object, ClientIdentity | null>();

/**
 * The identity of the client on `socket` when it presented a certificate that verified; null on
 * plain TCP, without a client certificate, or when verification failed.
 */
export function verifiedClientIdentity(socket: object | null | undefined): ClientIdentity | null {
  if (socket === null || socket === undefined) return null;
  const known = cache.get(socket);
  if (known !== undefined) return known;
  const identity = readIdentity(socket as PeerSocket);
  // Not cached while the handshake may still be running: a later call could see the certificate.
  if (identity !== null || (socket as PeerSocket).authorized === true) cache.set(socket, identity);
  return identity;
}

function readIdentity(socket: PeerSocket): ClientIdentity | null {
  if (socket.authorized !== true || typeof socket.getPeerCertificate !== 'function') return null;
  const raw = socket.getPeerCertificate(false)?.raw;
  if (raw === undefined || raw.length === 0) return null;
  const cert = new X509Certificate(raw);
  const subjectParts = cert.subject.split('\n');
  let commonName: string | null = null;
  for (const part of subjectParts) if (part.startsWith('CN=')) commonName = part.slice(3);
  return {
    subject: subjectParts.join(', '),
    commonName,
    issuer: cert.issuer.split('\n').join(', '),
    subjectAltName: cert.subjectAltName ?? null,
    serialNumber: cert.serialNumber,
    fingerprint256: cert.fingerprint256,
    validTo: new Date(cert.validTo),
  };
}
