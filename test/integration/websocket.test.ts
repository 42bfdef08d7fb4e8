import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { type RunningGateway, startGateway } from '../helpers/gateway.js';
import { metricValue } from '../helpers/metrics.js';

function openSocket(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected ${res.statusCode}`)));
  });
}

/** Writes raw bytes and collects the answer until the gateway closes the connection. */
function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let out = '';
    socket.on('data', (d: Buffer) => { out += d.toString('latin1'); });
    socket.on('close', () => resolve(out));
    socket.write(text);
  });
}

function nextMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => ws.once('message', (data) => resolve(String(data))));
}

describe('WebSocket routes', () => {
  let server: Server;
  let wss: WebSocketServer;
  let upstreamUrl: string;
  const seenPaths: string[] = [];
  let gw: RunningGateway;

  beforeAll(async () => {
    // One upstream serving both plain HTTP and WebSocket (echo, prefixed with the path it saw).
    server = createServer((req, res) => res.end(`http ${req.url} upgrade=${req.headers.upgrade ?? 'none'}`));
    wss = new WebSocketServer({ server });
    wss.on('connection', (ws, req) => {
      seenPaths.push(req.url ?? '');
      ws.on('message', (data) => ws.send(`${req.url} ${req.headers['x-forwarded-for']} ${String(data)}`));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    gw = await startGateway({
      upstreams: { chat: { targets: [{ url: upstreamUrl }] } },
      routes: [
        { name: 'ws', prefix: '/ws', upstream: 'chat', websocket: true, rewritePrefix: '/socket' },
        { name: 'plain', prefix: '/plain', upstream: 'chat' },
      ],
    });
  });

  afterAll(async () => {
    await gw.stop();
    wss.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('tunnels a WebSocket both ways on a websocket route, with the rewritten path', async () => {
    const ws = await openSocket(`ws://127.0.0.1:${gw.port}/ws/room?x=1`);
    ws.send('hello');
    expect(await nextMessage(ws)).toBe('/socket/room?x=1 127.0.0.1 hello');
    ws.send('again');
    expect(await nextMessage(ws)).toBe('/socket/room?x=1 127.0.0.1 again');
    await new Promise<void>((resolve) => { ws.once('close', () => resolve()); ws.close(); });
    await new Promise((r) => setTimeout(r, 50));
    expect(await metricValue(gw.gateway, 'gateway_requests_total', { route: 'ws', status: '101' })).toBe(1);
  });

  it('serves a WebSocket upgrade on a route without websocket: true as plain HTTP, upgrade dropped', async () => {
    await expect(openSocket(`ws://127.0.0.1:${gw.port}/plain/x`)).rejects.toThrow('unexpected 200');
    const before = seenPaths.length;
    // An h2c upgrade (curl --http2 on http://) is answered as HTTP/1.1, and the connection closed.
    const text = await rawExchange(gw.port, 'GET /plain/y HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n');
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(text).toMatch(/\r\nconnection: close\r\n/i);
    expect(text.endsWith('http /plain/y upgrade=none')).toBe(true);
    expect(seenPaths.length).toBe(before);
  });

  it('answers 404 for an upgrade that matches no route, and 502 when the upstream refuses the handshake', async () => {
    await expect(openSocket(`ws://127.0.0.1:${gw.port}/nowhere`)).rejects.toThrow('unexpected 404');
    const noWs = await startGateway({
      upstreams: { http: { targets: [{ url: upstreamUrl }] } },
      routes: [{ name: 'ws', prefix: '/', upstream: 'http', websocket: true }],
    });
    try {
      // The upstream's WebSocketServer refuses a handshake without a valid key: no 101 comes back.
      const text = await rawExchange(noWs.port, 'GET /x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
      expect(text).toMatch(/^HTTP\/1\.1 502/);
    } finally {
      await noWs.stop();
    }
  });
});
