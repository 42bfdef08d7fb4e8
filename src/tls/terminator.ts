// One TLS listener's certificates as a live object: it builds the options the listener's server is
// created with, answers each handshake's SNI from the certificates currently loaded, and swaps them
// on `kill -HUP` without restarting the server.
//
// Why an SNICallback even with a single certificate: Node fixes a server's certificates when it is
// created. The callback reads the current selector on every handshake, so a reload reaches every
// new connection that sends a server name; `attach()` plus `setSecureContext` covers the others
// (no SNI: IP literals, some health checkers), whose certificate is the server's own context.
// Connections already open keep the certificate they were accepted with; nothing is cut.
//
// Why all-or-nothing reloads: a renewal that wrote a new certificate but not yet its key (or a typo
// in one of several files) must not take down the names that still work. `reload` loads and checks
// every file first and swaps only when all of them load; otherwise it throws the ConfigError of
// the loader, naming each bad file, and the previous certificates keep serving.
//
// Sessions: every load gets fresh session-ticket keys, shared by all of its contexts, so a ticket
// resumes across SNI contexts but never outlives a reload (a resumed session skips client
// certificate verification, which must not survive a change of the client CA). A reload whose
// files are byte-for-byte unchanged keeps everything, tickets included. The cost of a real change:
// returning clients make one full handshake.
//
// Cost per handshake: the selector's one or two Map lookups and a callback. Per reload: one
// CertificateSet load (see certificates.ts).

import { randomBytes } from 'node:crypto';
import type { SecureContext, SecureContextOptions } from 'node:tls';
import type { ListenerTlsConfig, TlsVersion } from '../config/types.js';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { loadCertificateSet, type CertificateSet, type ContextSettings, type LoadedCertificate } from './certificates.js';
import { SniSelector } from './sni.js';

/** ALPN identifiers offered to clients, most preferred first. */
export const ALPN_HTTP2 = ['h2', 'http/1.1'] as const;
export const ALPN_HTTP1 = ['http/1.1'] as const;

/**
 * What `https.createServer`, `http2.createSecureServer` (fastify's `https` option) take. Mutable
 * fields and a fresh object per call, so it can be handed to either without a cast.
 */
export interface TlsServerOptions {
  /** The default certificate: handshakes without SNI, and names no certificate covers. */
  key: Buffer;
  cert: Buffer;
  minVersion: TlsVersion;
  ALPNProtocols: string[];
  /** Only read by `http2.createSecureServer`: HTTP/1.1 clients are served by the same server. */
  allowHTTP1: true;
  SNICallback: (serverName: string, callback: (err: Error | null, context?: SecureContext) => void) => void;
  /** mTLS: the client CA bundle; absent without `clientCa`. */
  ca?: Buffer;
  requestCert: boolean;
  rejectUnauthorized: boolean;
  honorCipherOrder: true;
  sessionIdContext: string;
  ticketKeys: Buffer;
}

/** A TLS server a reload updates in place: https.Server, http2.Http2SecureServer or tls.Server. */
export interface ReloadableServer {
  setSecureContext(options: SecureContextOptions): void;
  once(event: 'close', listener: () => void): unknown;
}

export interface TlsTerminatorOptions {
  /** Field path of the listener's `tls` block in messages, e.g. `listeners[0].tls`. */
  readonly path?: string;
  /** The gateway config file, named by problems that are not about one certificate file. */
  readonly configFile?: string;
  /** Clock for validity checks, in epoch milliseconds. */
  readonly now?: () => number;
}

export interface TlsReloadResult {
  /** False when every file was byte-for-byte the same: nothing was swapped. */
  readonly changed: boolean;
  /** Warnings of the new load (or of the unchanged files), for the caller to log. */
  readonly warnings: readonly ConfigIssue[];
}

interface Generation {
  readonly set: CertificateSet;
  readonly selector: SniSelector<LoadedCertificate>;
  readonly ticketKeys: Buffer;
}

export class TlsTerminator {
  readonly #path: string;
  readonly #configFile: string;
  readonly #now: () => number;
  /** One per listener for its lifetime: TLS sessions of the listener all carry it. */
  readonly #sessionIdContext: string;
  readonly #servers = new Set<ReloadableServer>();
  #current: Generation;
  #reloads: Promise<unknown> = Promise.resolve();

  /** Loads and checks every file of `tls`; throws the loader's ConfigError when one is bad. */
  static async load(tls: ListenerTlsConfig, options: TlsTerminatorOptions = {}): Promise<TlsTerminator> {
    const sessionIdContext = randomBytes(16).toString('hex');
    return new TlsTerminator(options, sessionIdContext, await loadGeneration(tls, options, sessionIdContext));
  }

  private constructor(options: TlsTerminatorOptions, sessionIdContext: string, first: Generation) {
    this.#path = options.path ?? 'tls';
    this.#configFile = options.configFile ?? '';
    this.#now = options.now ?? Date.now;
    this.#sessionIdContext = sessionIdContext;
    this.#current = first;
  }

  /** The certificates serving now. */
  get current(): CertificateSet {
    return this.#current.set;
  }

  /** Warnings of the load now serving (expiring soon, overlapping names, ...). */
  get warnings(): readonly ConfigIssue[] {
    return this.#current.set.warnings;
  }

  /** The certificate a handshake with this server name gets now (null/'' : no SNI). */
  select(serverName: string | null | undefined): LoadedCertificate {
    return this.#current.selector.select(serverName);
  }

  /**
   * Options to create the listener's server with. The SNICallback keeps reading the current
   * certificates after reloads; the default key/cert are those of now, which is why a server
   * should also be `attach`ed.
   */
  serverOptions(): TlsServerOptions {
    const { set } = this.#current;
    return {
      ...this.#defaultContextOptions(),
      ALPNProtocols: set.tls.http2 ? [...ALPN_HTTP2] : [...ALPN_HTTP1],
      allowHTTP1: true,
      SNICallback: this.#sniCallback,
      requestCert: set.clientCa !== null,
      rejectUnauthorized: true,
    };
  }

  /**
   * Makes reloads replace `server`'s own context too (the certificate of handshakes without SNI,
   * the client CA, the minimum version). Forgotten when the server closes.
   */
  attach(server: ReloadableServer): void {
    if (this.#servers.has(server)) return;
    this.#servers.add(server);
    server.once('close', () => this.#servers.delete(server));
  }

  /**
   * Re-reads every file of `tls` and swaps to them if all load. Otherwise throws the ConfigError
   * naming each bad file and keeps serving the previous certificates. Switching http2 or client
   * certificates on or off cannot happen on a running server and is refused the same way.
   * Concurrent calls run one after the other.
   */
  reload(tls: ListenerTlsConfig): Promise<TlsReloadResult> {
    const run = this.#reloads.then(() => this.#reload(tls));
    this.#reloads = run.catch(() => undefined);
    return run;
  }

  readonly #sniCallback = (serverName: string, callback: (err: Error | null, context?: SecureContext) => void): void => {
    callback(null, this.#current.selector.select(serverName).context);
  };

  async #reload(tls: ListenerTlsConfig): Promise<TlsReloadResult> {
    const before = this.#current.set;
    const issues: ConfigIssue[] = [];
    if (tls.http2 !== before.tls.http2) {
      issues.push(this.#issue('http2', 'switching HTTP/2 on or off needs a restart: the server type differs'));
    }
    if ((tls.clientCa === null) !== (before.tls.clientCa === null)) {
      issues.push(this.#issue('clientCa', 'turning client certificates on or off needs a restart'));
    }
    if (issues.length > 0) throw new ConfigError(issues);

    const next = await loadGeneration(tls, { path: this.#path, configFile: this.#configFile, now: this.#now }, this.#sessionIdContext);
    if (sameMaterial(before, next.set)) return { changed: false, warnings: next.set.warnings };
    this.#current = next;
    const options = this.#defaultContextOptions();
    for (const server of this.#servers) server.setSecureContext(options);
    return { changed: true, warnings: next.set.warnings };
  }

  /** The server's own context: the same settings as every SNI context of the generation. */
  #defaultContextOptions(): Pick<TlsServerOptions, 'key' | 'cert' | 'ca' | 'minVersion' | 'honorCipherOrder' | 'sessionIdContext' | 'ticketKeys'> {
    const { set, selector, ticketKeys } = this.#current;
    return {
      key: selector.default.keyPem,
      cert: selector.default.certPem,
      ...(set.clientCa === null ? {} : { ca: set.clientCa.pem }),
      minVersion: set.tls.minVersion,
      honorCipherOrder: true,
      sessionIdContext: this.#sessionIdContext,
      ticketKeys,
    };
  }

  #issue(field: string, message: string): ConfigIssue {
    return { file: this.#configFile, line: 0, col: 0, path: `${this.#path}.${field}`, message };
  }
}

async function loadGeneration(tls: ListenerTlsConfig, options: TlsTerminatorOptions, sessionIdContext: string): Promise<Generation> {
  const context: ContextSettings = { sessionIdContext, ticketKeys: randomBytes(48) };
  const set = await loadCertificateSet(tls, { path: options.path, configFile: options.configFile, now: (options.now ?? Date.now)(), context });
  return { set, selector: new SniSelector(set.certificates), ticketKeys: context.ticketKeys };
}

function sameMaterial(a: CertificateSet, b: CertificateSet): boolean {
  if (a.tls.minVersion !== b.tls.minVersion || a.certificates.length !== b.certificates.length) return false;
  if ((a.clientCa === null) !== (b.clientCa === null)) return false;
  if (a.clientCa !== null && b.clientCa !== null && !a.clientCa.pem.equals(b.clientCa.pem)) return false;
  return a.certificates.every((cert, i) => {
    const other = b.certificates[i]!;
    return cert.certPem.equals(other.certPem) && cert.keyPem.equals(other.keyPem);
  });
}
