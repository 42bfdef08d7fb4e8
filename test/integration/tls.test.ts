import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { connect as h2connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import type { PeerCertificate } from 'node:tls';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCerts } from '../helpers/certs.js';
import { handshake } from '../helpers/tls-clients.js';
import { simpleRoutes } from '../helpers/gateway.js';
import { useTestbed } from '../helpers/testbed.js';

// TLS termination through the running gateway: SNI, minimum version, HTTP/2 served for real,
// redirectToHttps, certificates swapped by a reload without a restart, and mTLS.

interface Echoed {
  method: string;
  url: string;
  headers: Record<string, string | undefined>;
  bodyLength: number;
}

/** The certificate a TLS client is shown for `servername`, and the negotiated protocol. */
async function peer(port: number, options: { servername?: string; ca: Buffer; maxVersion?: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'; minVersion?: 'TLSv1' | 'TLSv1.1'; ALPNProtocols?: string[] }): Promise<{ cert: PeerCertificate; alpn: string | false }> {
  const socket = await handshake(port, options);
  const result = { cert: socket.getPeerCertificate(), alpn: socket.alpnProtocol ?? false };
  socket.end();
  return result;
}

function httpsGet(port: number, path: string, options: { servername: string; ca: Buffer; cert?: Buffer; key?: Buffer; headers?: Record<string, string> }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = { host: options.servername, ...options.headers };
    const req = httpsRequest({ host: '127.0.0.1', port, path, servername: options.servername, ca: options.ca, cert: options.cert, key: options.key, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

describe('TLS listeners', () => {
  const bed = useTestbed();
  let certs: TestCerts;
  let ca: Buffer;

  beforeAll(async () => {
    certs = await TestCerts.create();
    ca = await readFile(certs.ca.cert);
  });

  afterAll(async () => {
    await certs.dispose();
  });

  async function gatewayWithTls(tls: Record<string, unknown>, extraListeners: Record<string, unknown>[] = []): Promise<{ port: number; plainPort: number | null; reload: () => Promise<unknown> }> {
    const upstream = await bed.upstream();
    const gw = await bed.gateway(simpleRoutes([upstream.url]), {
      listeners: [
        { name: 'https', address: '127.0.0.1', port: 0, tls },
        ...extraListeners,
      ],
    });
    const addresses = gw.gateway.addresses();
    return {
      port: addresses.find((a) => a.name === 'https')!.port,
      plainPort: addresses.find((a) => a.name === 'http')?.port ?? null,
      reload: () => gw.gateway.reload(),
    };
  }

  it('picks the certificate by SNI from the SANs, the first one by default, and refuses TLS 1.1', async () => {
    const api = await certs.leaf('api', { dns: ['api.example.test'] });
    const wild = await certs.leaf('wild', { dns: ['*.shop.example.test'] });
    const { port } = await gatewayWithTls({ certificates: [api, wild] });
    expect((await peer(port, { servername: 'api.example.test', ca })).cert.subjectaltname).toBe('DNS:api.example.test');
    expect((await peer(port, { servername: 'cart.shop.example.test', ca })).cert.subjectaltname).toBe('DNS:*.shop.example.test');
    expect((await peer(port, { servername: 'unknown.example.test', ca })).cert.subjectaltname).toBe('DNS:api.example.test');
    await expect(peer(port, { servername: 'api.example.test', ca, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' })).rejects.toThrow();

    const served = await httpsGet(port, '/hello?x=1', { servername: 'api.example.test', ca, headers: { 'x-forwarded-client-cert': 'Subject="CN=admin"' } });
    expect(served.status).toBe(200);
    const echoed = JSON.parse(served.body) as Echoed;
    expect(echoed.url).toBe('/hello?x=1');
    expect(echoed.headers['x-forwarded-proto']).toBe('https');
    expect(echoed.headers['x-forwarded-client-cert']).toBeUndefined(); // a client's forged copy is dropped
  });

  it('negotiates h2 and serves requests over HTTP/2, bodies included; HTTP/1.1 still works', async () => {
    const api = await certs.leaf('api-h2', { dns: ['api.example.test'] });
    const { port } = await gatewayWithTls({ certificates: [api], http2: true });
    expect((await peer(port, { servername: 'api.example.test', ca, ALPNProtocols: ['h2', 'http/1.1'] })).alpn).toBe('h2');

    const session = h2connect(`https://api.example.test:${port}`, { ca, servername: 'api.example.test', host: '127.0.0.1', port } as never);
    try {
      const exchange = (headers: Record<string, string>, body?: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> =>
        new Promise((resolve, reject) => {
          const stream = session.request(headers, { endStream: body === undefined });
          let text = '';
          let responseHeaders: Record<string, unknown> = {};
          stream.setEncoding('utf8');
          stream.on('response', (h) => (responseHeaders = h));
          stream.on('data', (chunk: string) => (text += chunk));
          stream.on('end', () => resolve({ status: Number(responseHeaders[':status']), headers: responseHeaders, body: text }));
          stream.on('error', reject);
          if (body !== undefined) stream.end(body);
        });
      const get = await exchange({ ':method': 'GET', ':path': '/h2/a?b=c' });
      expect(get.status).toBe(200);
      expect(get.headers['x-request-id']).toEqual(expect.any(String));
      const echoed = JSON.parse(get.body) as Echoed;
      expect(echoed.url).toBe('/h2/a?b=c');
      expect(echoed.headers.host).toBe(`api.example.test:${port}`);
      expect(Object.keys(echoed.headers).some((name) => name.startsWith(':'))).toBe(false);

      const post = await exchange({ ':method': 'POST', ':path': '/h2/upload' }, 'x'.repeat(5000)); // no content-length
      expect(post.status).toBe(200);
      expect((JSON.parse(post.body) as Echoed).bodyLength).toBe(5000);

      const missing = await exchange({ ':method': 'GET', ':path': '/%zz' });
      expect(missing.status).toBe(400);

      const fields = (n: number): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-h${i}`, 'v']));
      expect((await exchange({ ':method': 'GET', ':path': '/many', ...fields(100) })).status).toBe(200);
      const tooMany = await exchange({ ':method': 'GET', ':path': '/many', ...fields(101) });
      expect(tooMany.status).toBe(431);
      expect(JSON.parse(tooMany.body)).toMatchObject({ error: { code: 'headers_too_large' } });
    } finally {
      session.close();
    }
    expect((await httpsGet(port, '/h1', { servername: 'api.example.test', ca })).status).toBe(200);
  });

  it('redirects a plain listener with redirectToHttps to the TLS listener with 308, keeping path and query', async () => {
    const api = await certs.leaf('api-redirect', { dns: ['api.example.test'] });
    const { port, plainPort } = await gatewayWithTls({ certificates: [api] }, [{ name: 'http', address: '127.0.0.1', port: 0, redirectToHttps: true }]);
    const res = await request(`http://127.0.0.1:${plainPort!}/shop/cart?item=7&q=a%20b`, { method: 'POST', body: 'x', headers: { host: 'API.example.test:80' } });
    await res.body.dump();
    expect(res.statusCode).toBe(308);
    expect(res.headers.location).toBe(`https://api.example.test:${port}/shop/cart?item=7&q=a%20b`);
  });

  it('swaps certificates on reload for new connections, and keeps the old ones when a file is broken', async () => {
    const first = await certs.leaf('first', { dns: ['api.example.test'], cn: 'first' });
    const second = await certs.leaf('second', { dns: ['api.example.test'], cn: 'second' });
    const live = { cert: certs.path('live.crt'), key: certs.path('live.key') };
    await copyFile(first.cert, live.cert);
    await copyFile(first.key, live.key);
    const { port, reload } = await gatewayWithTls({ certificates: [live] });
    expect((await peer(port, { servername: 'api.example.test', ca })).cert.subject.CN).toBe('first');
    expect((await peer(port, { ca })).cert.subject.CN).toBe('first'); // no SNI

    await copyFile(second.cert, live.cert);
    await copyFile(second.key, live.key);
    await reload();
    expect((await peer(port, { servername: 'api.example.test', ca })).cert.subject.CN).toBe('second');
    expect((await peer(port, { ca })).cert.subject.CN).toBe('second');

    await writeFile(live.cert, '-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n');
    await reload();
    expect((await peer(port, { servername: 'api.example.test', ca })).cert.subject.CN).toBe('second');
  });

  it('requires and verifies client certificates with clientCa (mTLS)', async () => {
    const api = await certs.leaf('api-mtls', { dns: ['api.example.test'] });
    const client = await certs.client('alice', { cn: 'alice' });
    const stranger = await certs.client('mallory', { cn: 'mallory', issuer: 'otherCa' });
    const { port } = await gatewayWithTls({ certificates: [api], clientCa: certs.clientCa.cert });
    const ok = await httpsGet(port, '/m', { servername: 'api.example.test', ca, cert: await readFile(client.cert), key: await readFile(client.key) });
    expect(ok.status).toBe(200);
    // The verified subject reaches the upstream as Envoy's x-forwarded-client-cert.
    expect((JSON.parse(ok.body) as Echoed).headers['x-forwarded-client-cert']).toMatch(/^Hash=[0-9a-f]{64};Subject="[^"]*CN=alice"$/);
    await expect(httpsGet(port, '/m', { servername: 'api.example.test', ca })).rejects.toThrow();
    await expect(httpsGet(port, '/m', { servername: 'api.example.test', ca, cert: await readFile(stranger.cert), key: await readFile(stranger.key) })).rejects.toThrow();
  });
});
