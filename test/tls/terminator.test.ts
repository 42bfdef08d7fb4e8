import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import { connect as http2Connect, createSecureServer, type IncomingHttpHeaders } from 'node:http2';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListenerTlsConfig } from '../../src/config/types.js';
import { ConfigError } from '../../src/errors.js';
import { verifiedClientIdentity } from '../../src/tls/client-identity.js';
import { TlsTerminator } from '../../src/tls/terminator.js';
import { type CertPair, TestCerts } from '../helpers/certs.js';
import { cnOf, echo, greet, greetingServer, handshake, isClosedByServer, listen, pem, refusal, type RunningServer } from '../helpers/tls-clients.js';

function tlsConfig(certificates: readonly CertPair[], extra: Partial<ListenerTlsConfig> = {}): ListenerTlsConfig {
  return { certificates, minVersion: 'TLSv1.2', http2: false, clientCa: null, ...extra };
}

/** TLS 1.0/1.1 need SHA-1 signatures, which OpenSSL 3 allows only at security level 0. */
const LEGACY_CLIENT = { ciphers: 'DEFAULT@SECLEVEL=0' } as const;

let certs: TestCerts;
let fallback: CertPair; // listed first: the default
let exact: CertPair;
let wild: CertPair;
let v1: CertPair;
let v2: CertPair;
let alice: CertPair;
let mallory: CertPair;

beforeAll(async () => {
  certs = await TestCerts.create();
  [fallback, exact, wild, v1, v2, alice, mallory] = await Promise.all([
    certs.leaf('fallback', { dns: ['default.test'], ips: ['127.0.0.1'] }),
    certs.leaf('exact', { dns: ['api.example.com'] }),
    certs.leaf('wild', { dns: ['*.example.com'] }),
    certs.leaf('v1', { cn: 'reload v1', dns: ['reload.test'], ips: ['127.0.0.1'] }),
    certs.leaf('v2', { cn: 'reload v2', dns: ['reload.test'], ips: ['127.0.0.1'] }),
    certs.client('alice', { cn: 'alice' }),
    certs.client('mallory', { cn: 'mallory', issuer: 'otherCa' }),
  ]);
});

afterAll(async () => {
  await certs.dispose();
});

describe('SNI on a real server', () => {
  let srv: RunningServer<TlsServer>;

  beforeAll(async () => {
    const terminator = await TlsTerminator.load(tlsConfig([fallback, wild, exact]));
    srv = await greetingServer(terminator.serverOptions());
  });

  afterAll(async () => {
    await srv.close();
  });

  const seen = async (servername?: string): Promise<string | undefined> => {
    const { socket, peer } = await greet(srv.port, servername === undefined ? {} : { servername });
    socket.destroy();
    return cnOf(peer);
  };

  it('answers an exact name with its certificate, which the client verifies', async () => {
    const { socket, peer } = await greet(srv.port, { servername: 'api.example.com', ca: pem(certs.ca.cert), rejectUnauthorized: true });
    expect(socket.authorized).toBe(true);
    expect(cnOf(peer)).toBe('api.example.com');
    expect(peer.subjectaltname).toBe('DNS:api.example.com');
    socket.destroy();
  });

  it('prefers the exact name over a wildcard listed before it', async () => {
    expect(await seen('api.example.com')).toBe('api.example.com');
  });

  it('answers a name under a wildcard with the wildcard certificate', async () => {
    const { socket, peer } = await greet(srv.port, { servername: 'www.example.com', ca: pem(certs.ca.cert), rejectUnauthorized: true });
    expect(peer.subjectaltname).toBe('DNS:*.example.com');
    socket.destroy();
    expect(await seen('a.b.example.com')).toBe('default.test');
  });

  it('compares names case-insensitively and without a trailing dot', async () => {
    expect(await seen('API.Example.COM')).toBe('api.example.com');
    expect(await seen('api.example.com.')).toBe('api.example.com');
  });

  it('answers unknown names and handshakes without SNI with the first certificate', async () => {
    expect(await seen('unknown.test')).toBe('default.test');
    // Connecting to an IP literal sends no SNI at all.
    const { socket, peer } = await greet(srv.port, { ca: pem(certs.ca.cert), rejectUnauthorized: true });
    expect(cnOf(peer)).toBe('default.test');
    expect(socket.authorized).toBe(true);
    socket.destroy();
  });
});

describe('protocol versions', () => {
  let tls12: RunningServer<TlsServer>;
  let tls13: RunningServer<TlsServer>;
  let permissive: RunningServer<TlsServer>;

  beforeAll(async () => {
    tls12 = await greetingServer((await TlsTerminator.load(tlsConfig([fallback, exact]))).serverOptions());
    tls13 = await greetingServer((await TlsTerminator.load(tlsConfig([fallback, exact], { minVersion: 'TLSv1.3' }))).serverOptions());
    // A control: the same legacy client does get through to a server that allows TLS 1.0.
    permissive = await greetingServer({ key: pem(fallback.key), cert: pem(fallback.cert), minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' });
  });

  afterAll(async () => {
    await Promise.all([tls12.close(), tls13.close(), permissive.close()]);
  });

  it('can speak TLS 1.0 and 1.1 from the test client (control)', async () => {
    for (const version of ['TLSv1', 'TLSv1.1'] as const) {
      const { socket, protocol } = await greet(permissive.port, { ...LEGACY_CLIENT, minVersion: version, maxVersion: version });
      expect(protocol).toBe(version);
      socket.destroy();
    }
  });

  it('refuses TLS 1.1 and 1.0 with minVersion TLSv1.2: the server answers protocol_version', async () => {
    for (const version of ['TLSv1', 'TLSv1.1'] as const) {
      for (const servername of [undefined, 'api.example.com']) {
        const err = await refusal(greet(tls12.port, { ...LEGACY_CLIENT, minVersion: version, maxVersion: version, ...(servername ? { servername } : {}) }));
        expect(err.code).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
      }
    }
  });

  it('accepts TLS 1.2 and prefers 1.3 with minVersion TLSv1.2', async () => {
    const v12 = await greet(tls12.port, { maxVersion: 'TLSv1.2', servername: 'api.example.com' });
    expect(v12.protocol).toBe('TLSv1.2');
    v12.socket.destroy();
    const v13 = await greet(tls12.port);
    expect(v13.protocol).toBe('TLSv1.3');
    v13.socket.destroy();
  });

  it('refuses TLS 1.2 with minVersion TLSv1.3, with and without SNI', async () => {
    for (const servername of [undefined, 'api.example.com']) {
      const err = await refusal(greet(tls13.port, { maxVersion: 'TLSv1.2', ...(servername ? { servername } : {}) }));
      expect(err.code).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
    }
    const ok = await greet(tls13.port, { servername: 'api.example.com' });
    expect(ok.protocol).toBe('TLSv1.3');
    ok.socket.destroy();
  });
});

/** One HTTP/2 request; resolves with the status, the body and the negotiated ALPN protocol. */
function h2Get(port: number, options: { servername?: string; key?: Buffer; cert?: Buffer } = {}): Promise<{ status: number; body: string; alpn: string | undefined }> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(`https://127.0.0.1:${port}`, { ca: pem(certs.ca.cert), servername: options.servername ?? 'api.example.com', ...(options.key ? { key: options.key, cert: options.cert } : {}) });
    session.on('error', reject);
    const stream = session.request({ ':path': '/' });
    let headers: IncomingHttpHeaders = {};
    let body = '';
    stream.on('response', (h) => {
      headers = h;
    });
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      body += chunk;
    });
    stream.on('error', reject);
    stream.on('end', () => {
      const alpn = session.alpnProtocol;
      session.close();
      resolve({ status: Number(headers[':status']), body, alpn });
    });
    stream.end();
  });
}

/** One HTTP/1.1 request over TLS (Node's https client offers no ALPN). */
function httpsGet(port: number, options: { servername?: string; key?: Buffer; cert?: Buffer } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: '127.0.0.1',
      port,
      path: '/',
      ca: pem(certs.ca.cert),
      servername: options.servername ?? 'api.example.com',
      agent: false,
      ...(options.key ? { key: options.key, cert: options.cert } : {}),
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('ALPN', () => {
  it('negotiates h2 on an HTTP/2 server built from the options, and still serves HTTP/1.1', async () => {
    const terminator = await TlsTerminator.load(tlsConfig([fallback, exact, wild], { http2: true }));
    const options = terminator.serverOptions();
    expect(options.ALPNProtocols).toEqual(['h2', 'http/1.1']);
    const srv = await listen(createSecureServer(options, (req, res) => {
      res.end(JSON.stringify({ httpVersion: req.httpVersion }));
    }));
    try {
      // Through an SNI-selected context (exact, wildcard) and the server's own (the IP, no SNI).
      for (const servername of ['api.example.com', 'www.example.com']) {
        const h2 = await h2Get(srv.port, { servername });
        expect(h2).toEqual({ status: 200, body: JSON.stringify({ httpVersion: '2.0' }), alpn: 'h2' });
      }
      const plain = await handshake(srv.port, { ALPNProtocols: ['h2', 'http/1.1'] });
      expect(plain.alpnProtocol).toBe('h2');
      plain.destroy();
      const h1 = await httpsGet(srv.port);
      expect(h1).toEqual({ status: 200, body: JSON.stringify({ httpVersion: '1.1' }) });
    } finally {
      await srv.close();
    }
  });

  it('offers only http/1.1 without http2', async () => {
    const terminator = await TlsTerminator.load(tlsConfig([fallback, exact]));
    expect(terminator.serverOptions().ALPNProtocols).toEqual(['http/1.1']);
    const srv = await listen(createHttpsServer(terminator.serverOptions(), (_req, res) => res.end('ok')));
    try {
      for (const servername of ['api.example.com', 'unknown.test']) {
        const socket = await handshake(srv.port, { servername, ALPNProtocols: ['h2', 'http/1.1'] });
        expect(socket.alpnProtocol).toBe('http/1.1');
        socket.destroy();
      }
      expect(await httpsGet(srv.port)).toEqual({ status: 200, body: 'ok' });
    } finally {
      await srv.close();
    }
  });

  it('plugs into fastify\'s https option, with and without http2', async () => {
    const h2Terminator = await TlsTerminator.load(tlsConfig([fallback, exact], { http2: true }));
    const h2App = Fastify({ http2: true, https: h2Terminator.serverOptions() });
    h2App.get('/', async (request) => ({ httpVersion: request.raw.httpVersion }));
    h2Terminator.attach(h2App.server);
    const h1Terminator = await TlsTerminator.load(tlsConfig([fallback, exact]));
    const h1App = Fastify({ https: h1Terminator.serverOptions() });
    h1App.get('/', async (request) => ({ httpVersion: request.raw.httpVersion }));
    h1Terminator.attach(h1App.server);
    await h2App.listen({ port: 0, host: '127.0.0.1' });
    await h1App.listen({ port: 0, host: '127.0.0.1' });
    try {
      const h2Port = (h2App.server.address() as AddressInfo).port;
      const h1Port = (h1App.server.address() as AddressInfo).port;
      expect(await h2Get(h2Port)).toEqual({ status: 200, body: JSON.stringify({ httpVersion: '2.0' }), alpn: 'h2' });
      expect(await httpsGet(h2Port)).toEqual({ status: 200, body: JSON.stringify({ httpVersion: '1.1' }) });
      expect(await httpsGet(h1Port)).toEqual({ status: 200, body: JSON.stringify({ httpVersion: '1.1' }) });
    } finally {
      await h2App.close();
      await h1App.close();
    }
  });
});

describe('reload', () => {
  let live: CertPair;
  let terminator: TlsTerminator;
  let srv: RunningServer<TlsServer>;

  beforeAll(async () => {
    live = { cert: certs.path('live.crt'), key: certs.path('live.key') };
    await copyFile(v1.cert, live.cert);
    await copyFile(v1.key, live.key);
    terminator = await TlsTerminator.load(tlsConfig([live]), { path: 'listeners[0].tls' });
    const server = createTlsServer(terminator.serverOptions(), (socket) => {
      socket.on('error', () => {});
      socket.write('hello -\n');
      socket.pipe(socket);
    });
    terminator.attach(server);
    srv = await listen(server);
  });

  afterAll(async () => {
    await srv.close();
  });

  it('swaps the certificate for new connections while an open one keeps working', async () => {
    const before = await greet(srv.port, { servername: 'reload.test' });
    expect(cnOf(before.peer)).toBe('reload v1');

    await copyFile(v2.cert, live.cert);
    await copyFile(v2.key, live.key);
    const result = await terminator.reload(tlsConfig([live]));
    expect(result).toEqual({ changed: true, warnings: [] });
    expect(terminator.select('reload.test').subject).toContain('CN=reload v2');

    const withSni = await greet(srv.port, { servername: 'reload.test', ca: pem(certs.ca.cert), rejectUnauthorized: true });
    expect(cnOf(withSni.peer)).toBe('reload v2');
    withSni.socket.destroy();
    // No SNI: the server's own context, replaced through attach().
    const withoutSni = await greet(srv.port, { ca: pem(certs.ca.cert), rejectUnauthorized: true });
    expect(cnOf(withoutSni.peer)).toBe('reload v2');
    withoutSni.socket.destroy();

    expect(await echo(before.socket, 'still here')).toBe('still here');
    expect(cnOf(before.socket.getPeerCertificate())).toBe('reload v1');
    before.socket.destroy();
  });

  it('changes nothing when the files are unchanged', async () => {
    const certificate = terminator.current.certificates[0];
    expect(await terminator.reload(tlsConfig([live]))).toEqual({ changed: false, warnings: [] });
    expect(terminator.current.certificates[0]).toBe(certificate);
  });

  it('keeps the old certificate and names the file when a reloaded certificate is broken', async () => {
    const good = await readFile(live.cert);
    await writeFile(live.cert, good.subarray(0, 200)); // a renewal caught half-written
    try {
      const err = await terminator.reload(tlsConfig([live])).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues).toEqual([
        expect.objectContaining({ file: live.cert, path: 'listeners[0].tls.certificates[0].cert' }),
      ]);
      expect((err as ConfigError).message).toContain(live.cert);
      const after = await greet(srv.port, { servername: 'reload.test' });
      expect(cnOf(after.peer)).toBe('reload v2');
      after.socket.destroy();
    } finally {
      await writeFile(live.cert, good);
    }
  });

  it('keeps the old certificate when the new certificate came without its key', async () => {
    await copyFile(v1.cert, live.cert); // the key is still v2's
    try {
      const err = await terminator.reload(tlsConfig([live])).then(() => null, (e: unknown) => e);
      expect((err as ConfigError).issues).toEqual([
        expect.objectContaining({ file: live.key, message: expect.stringContaining(`does not belong to the certificate ${live.cert}`) }),
      ]);
      const after = await greet(srv.port);
      expect(cnOf(after.peer)).toBe('reload v2');
      after.socket.destroy();
    } finally {
      await copyFile(v2.cert, live.cert);
    }
  });

  it('refuses to switch http2 or client certificates on a running server', async () => {
    const err = await terminator.reload(tlsConfig([live], { http2: true, clientCa: certs.clientCa.cert })).then(() => null, (e: unknown) => e);
    expect((err as ConfigError).issues.map((i) => i.path)).toEqual(['listeners[0].tls.http2', 'listeners[0].tls.clientCa']);
  });
});

describe('client certificates (mTLS)', () => {
  let terminator: TlsTerminator;
  let srv: RunningServer<TlsServer>;
  const clientCert = (pair: CertPair) => ({ key: pem(pair.key), cert: pem(pair.cert) });

  beforeAll(async () => {
    terminator = await TlsTerminator.load(tlsConfig([fallback, exact], { clientCa: certs.clientCa.cert }));
    const options = terminator.serverOptions();
    expect(options).toMatchObject({ requestCert: true, rejectUnauthorized: true, ca: pem(certs.clientCa.cert) });
    const server = (await greetingServer(options));
    terminator.attach(server.server);
    srv = server;
  });

  afterAll(async () => {
    await srv.close();
  });

  it('refuses a client without a certificate, with and without SNI, TLS 1.3 and 1.2', async () => {
    for (const servername of [undefined, 'api.example.com']) {
      const sni = servername ? { servername } : {};
      const v13 = await refusal(greet(srv.port, sni));
      expect(v13.code).toBe('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
      const v12 = await refusal(greet(srv.port, { ...sni, maxVersion: 'TLSv1.2' }));
      expect(v12.code).toBe('ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE');
    }
  });

  it('refuses a client certificate from another CA', async () => {
    const refused: string[] = [];
    srv.server.on('tlsClientError', () => {});
    for (const servername of [undefined, 'api.example.com']) {
      for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
        const err = await refusal(greet(srv.port, { ...clientCert(mallory), maxVersion, ...(servername ? { servername } : {}) }));
        if (isClosedByServer(err)) refused.push(`${servername ?? 'no SNI'} ${maxVersion}`);
      }
    }
    expect(refused).toHaveLength(4);
  });

  it('accepts a certificate of the client CA and extracts its verified subject', async () => {
    for (const servername of [undefined, 'api.example.com']) {
      const { socket, greeting } = await greet(srv.port, { ...clientCert(alice), ...(servername ? { servername } : {}) });
      expect(greeting).toBe('hello alice');
      socket.destroy();
    }
  });

  it('resumes a TLS 1.2 session with a client certificate through an SNI context', async () => {
    const first = await greet(srv.port, { ...clientCert(alice), servername: 'api.example.com', maxVersion: 'TLSv1.2' });
    const session = first.socket.getSession();
    first.socket.destroy();
    expect(session).toBeDefined();
    const second = await greet(srv.port, { ...clientCert(alice), servername: 'api.example.com', maxVersion: 'TLSv1.2', session: session! });
    expect(second.socket.isSessionReused()).toBe(true);
    expect(second.greeting).toBe('hello alice');
    second.socket.destroy();
  });

  it('gives routes the subject over HTTPS and HTTP/2', async () => {
    const h2Terminator = await TlsTerminator.load(tlsConfig([fallback, exact], { http2: true, clientCa: certs.clientCa.cert }));
    const app = await listen(createSecureServer(h2Terminator.serverOptions(), (req, res) => {
      const identity = verifiedClientIdentity(req.socket);
      res.end(JSON.stringify({ subject: identity?.subject, cn: identity?.commonName, issuer: identity?.issuer }));
    }));
    try {
      const expected = JSON.stringify({ subject: 'O=Gateway Tests, CN=alice', cn: 'alice', issuer: 'CN=Test Client CA' });
      expect(await h2Get(app.port, clientCert(alice))).toEqual({ status: 200, body: expected, alpn: 'h2' });
      expect(await httpsGet(app.port, clientCert(alice))).toEqual({ status: 200, body: expected });
    } finally {
      await app.close();
    }
  });

  it('reloads the client CA into every context', async () => {
    const bundle = await certs.file('client-ca-bundle.crt', await readFile(certs.otherCa.cert));
    const reloading = await TlsTerminator.load(tlsConfig([fallback, exact], { clientCa: bundle }));
    const server = await greetingServer(reloading.serverOptions());
    reloading.attach(server.server);
    try {
      expect(isClosedByServer(await refusal(greet(server.port, { ...clientCert(alice), servername: 'api.example.com' })))).toBe(true);
      await writeFile(bundle, await readFile(certs.clientCa.cert));
      expect((await reloading.reload(tlsConfig([fallback, exact], { clientCa: bundle }))).changed).toBe(true);
      for (const servername of [undefined, 'api.example.com']) {
        const sni = servername ? { servername } : {};
        const ok = await greet(server.port, { ...clientCert(alice), ...sni });
        expect(ok.greeting).toBe('hello alice');
        ok.socket.destroy();
        expect(isClosedByServer(await refusal(greet(server.port, { ...clientCert(mallory), ...sni })))).toBe(true);
      }
    } finally {
      await server.close();
    }
  });

  it('reports no identity on a connection without a verified certificate', () => {
    expect(verifiedClientIdentity(null)).toBeNull();
    expect(verifiedClientIdentity({})).toBeNull();
    expect(verifiedClientIdentity({ authorized: false, getPeerCertificate: () => ({ raw: pem(alice.cert) }) })).toBeNull();
  });
});
