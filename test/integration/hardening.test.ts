// Hostile input on raw sockets (node:net): request smuggling shapes, malformed framing, Host
// confusion, header floods, slow and idle clients, WebSocket upgrade abuse. Every refusal must be
// a JSON 4xx (or a closed connection where HTTP cannot answer), must never reach an upstream, and
// must leave the gateway serving normal requests.
//
// Not repeated here (already covered elsewhere): path normalisation refusals, oversized heads and
// the basic absolute-form/Host mismatch (proxy.test.ts), the headers-dripping slowloris
// (slow-clients.test.ts), WebSocket tunnelling, upgrades on plain routes and upstream handshake
// refusals (websocket.test.ts).
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGateway, simpleRoutes, startGateway } from '../helpers/gateway.js';
import { metricValue } from '../helpers/metrics.js';
import { TestUpstream, echo } from '../helpers/upstream.js';
import { sleep, until } from '../helpers/wait.js';

interface ErrorBody {
  error: { status: number; code: string; message: string; requestId: string };
}

interface Reply {
  /** Everything the gateway sent, latin1. */
  readonly text: string;
  /** The gateway ended or reset the connection before the wait ran out. */
  readonly closed: boolean;
  /** Status of the first response, null when none came. */
  readonly status: number | null;
  /** Body of the first response parsed as JSON, null when it is not JSON. */
  readonly json: ErrorBody | null;
  /** How many responses the gateway wrote (a smuggled second request would make two). */
  readonly responses: number;
}

function parseReply(text: string, closed: boolean): Reply {
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(text);
  let json: ErrorBody | null = null;
  const headEnd = text.indexOf('\r\n\r\n');
  if (headEnd !== -1) {
    const lengthMatch = /\r\ncontent-length: (\d+)\r\n/i.exec(text.slice(0, headEnd + 2));
    const body = lengthMatch === null ? text.slice(headEnd + 4) : text.slice(headEnd + 4, headEnd + 4 + Number(lengthMatch[1]));
    try {
      json = JSON.parse(body) as ErrorBody;
    } catch {
      json = null;
    }
  }
  const responses = text.match(/(?:^|\r\n)HTTP\/1\.[01] \d{3} /g)?.length ?? 0;
  return { text, closed, status: m === null ? null : Number(m[1]), json, responses };
}

/**
 * Writes `parts` on a fresh connection (`gapMs` apart) and collects what comes back until the
 * gateway closes the connection or `waitMs` passes. The client never closes first: it is
 * half-open capable, so `closed` means the gateway ended or reset the connection itself.
 */
function send(port: number, parts: string | readonly (string | Buffer)[], options: { gapMs?: number; waitMs?: number } = {}): Promise<Reply> {
  const { gapMs = 0, waitMs = 2000 } = options;
  const list = typeof parts === 'string' ? [parts] : parts;
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(parseReply(Buffer.concat(chunks).toString('latin1'), closed));
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', () => {}); // a reset shows up as 'close'
    void (async () => {
      for (const part of list) {
        if (socket.destroyed || done) return;
        socket.write(part);
        if (gapMs > 0) await sleep(gapMs);
      }
    })();
  });
}

/** `n` header lines `X-H-0001: v` ... (CRLF-terminated). */
function headerLines(n: number, from = 1): string {
  let out = '';
  for (let i = from; i < from + n; i++) out += `X-H-${String(i).padStart(4, '0')}: v\r\n`;
  return out;
}

const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n';

describe('hostile input', () => {
  let upA: TestUpstream;
  let upB: TestUpstream;
  let upAny: TestUpstream;
  let gw: RunningGateway;
  /** Every request head any upstream received, complete or not: `METHOD url`. */
  const arrivals: string[] = [];

  const seenTotal = (): number => upA.seen.length + upB.seen.length + upAny.seen.length;

  beforeAll(async () => {
    [upA, upB, upAny] = await Promise.all([0, 1, 2].map(() => new TestUpstream(echo).start())) as [TestUpstream, TestUpstream, TestUpstream];
    // No 'upgrade' listener: Node serves a WebSocket handshake to these as a plain request (200).
    for (const up of [upA, upB, upAny]) up.server.on('request', (req: IncomingMessage) => arrivals.push(`${req.method} ${req.url}`));
    gw = await startGateway({
      upstreams: {
        a: { targets: [{ url: upA.url }] },
        b: { targets: [{ url: upB.url }] },
        any: { targets: [{ url: upAny.url }] },
      },
      routes: [
        { name: 'a', host: 'a.example', prefix: '/', upstream: 'a' },
        { name: 'b', host: 'b.example', prefix: '/', upstream: 'b' },
        { name: 'ws', prefix: '/ws', upstream: 'any', websocket: true },
        { name: 'any', prefix: '/', upstream: 'any' },
      ],
    }, { limits: { headersTimeout: '2s', requestTimeout: '3s', bodyLimit: '64kb' } });
  });

  afterAll(async () => {
    await gw.stop();
    await Promise.all([upA.stop(), upB.stop(), upAny.stop()]);
  });

  /** A normal request still gets through, and reaches the upstream. */
  async function expectStillServing(): Promise<void> {
    const before = upAny.seen.length;
    const res = await request(`${gw.url}/still-ok`, { headers: { host: 'x' } });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    expect(upAny.seen.length).toBe(before + 1);
  }

  /**
   * Sends `raw`, expects exactly one JSON error with `status` and `code`, the connection closed
   * (unless `closes: false`: a well-framed request refused by routing rules may keep it), and that
   * nothing of it reached any upstream, not even its head.
   */
  async function expectRefused(raw: string | readonly (string | Buffer)[], status: number, code: string, options: { gapMs?: number; closes?: boolean } = {}): Promise<Reply> {
    const seenBefore = seenTotal();
    const arrivalsBefore = arrivals.length;
    // A connection that may stay open is not waited on for long.
    const reply = await send(gw.port, raw, { gapMs: options.gapMs ?? 0, waitMs: options.closes === false ? 500 : 2000 });
    expect(reply.status, reply.text).toBe(status);
    expect(reply.json?.error, reply.text).toMatchObject({ status, code });
    expect(reply.json?.error.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(reply.responses, reply.text).toBe(1);
    if (options.closes !== false) {
      expect(reply.closed, 'the gateway closes the connection').toBe(true);
      expect(reply.text).toMatch(/\r\nconnection: close\r\n/i);
    }
    await sleep(50);
    expect(seenTotal(), 'no upstream got a complete request').toBe(seenBefore);
    // Nor any part of it: neither its head nor a request smuggled behind it.
    expect(arrivals.slice(arrivalsBefore), 'no upstream saw the request').toEqual([]);
    await expectStillServing();
    return reply;
  }

  describe('request smuggling shapes: 400, connection closed, never forwarded', () => {
    it.each([
      ['Content-Length and Transfer-Encoding', `POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
      ['Transfer-Encoding and Content-Length', `POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n${SMUGGLED}`],
      ['Transfer-Encoding and Content-Length: 0', `POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n5\r\nhello\r\n0\r\n\r\n`],
      ['duplicate Content-Length, same value', 'POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello'],
      ['duplicate Content-Length, different values', `POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 41\r\n\r\nhello${SMUGGLED}`],
      ['Content-Length list in one field', 'POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello'],
      ['Content-Length: +5', 'POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello'],
      ['Content-Length: 5 5', 'POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 5 5\r\n\r\nhello'],
      ['Content-Length: 0x5 (hex)', 'POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello'],
      ['Content-Length: -5', 'POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nhello'],
      ['Content-Length: 5.0', 'POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 5.0\r\n\r\nhello'],
      ['Content-Length: empty', 'POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\nhello'],
      ['Content-Length past 2^64', 'POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\nhello'],
      ['Transfer-Encoding: chunked, identity', `POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${SMUGGLED}`],
      ['Transfer-Encoding: gzip', `POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n${SMUGGLED}`],
      ['Transfer-Encoding: xchunked', `POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
      ['Transfer-Encoding: chunked-false', `POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked-false\r\n\r\n0\r\n\r\n${SMUGGLED}`],
      ['Transfer-Encoding folded onto the next line', `POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
      ['Transfer-Encoding with a folded chunked', `POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\tchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
      ['Transfer-Encoding with a space before the colon', `POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
      ['Transfer-Encoding split over two fields, identity last', `POST /s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n${SMUGGLED}`],
      ['Transfer-Encoding on an HTTP/1.0 request', `POST /s HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
      ['obs-fold in an ordinary header', 'GET /s HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n'],
      ['space before the colon (Host : x)', 'GET /s HTTP/1.1\r\nHost : x\r\n\r\n'],
      ['space before the colon in another header', 'GET /s HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n'],
      ['tab before the colon', 'GET /s HTTP/1.1\r\nHost: x\r\nX-A\t: b\r\n\r\n'],
      ['bare LF line endings throughout', 'GET /s HTTP/1.1\nHost: x\n\n'],
      ['bare LF after one header', 'GET /s HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n'],
      ['bare LF ending the head', 'GET /s HTTP/1.1\r\nHost: x\r\n\n'],
      ['bare CR after the request line', 'GET /s HTTP/1.1\rHost: x\r\n\r\n'],
      ['bare CR inside a header value', 'GET /s HTTP/1.1\r\nHost: x\r\nX-A: b\rX-B: c\r\n\r\n'],
      ['NUL in a header value', 'GET /s HTTP/1.1\r\nHost: x\r\nX-A: b\x00c\r\n\r\n'],
      ['a header name that is not a token', 'GET /s HTTP/1.1\r\nHost: x\r\nX(A): b\r\n\r\n'],
      ['an empty header name', 'GET /s HTTP/1.1\r\nHost: x\r\n: b\r\n\r\n'],
      ['an unknown HTTP version', 'GET /s HTTP/1.2\r\nHost: x\r\n\r\n'],
      ['HTTP/2.0 in HTTP/1 syntax', 'GET /s HTTP/2.0\r\nHost: x\r\n\r\n'],
      ['a request line without a version (HTTP/0.9), headers after it', 'GET /s\r\nHost: x\r\n\r\n'],
      ['a request line without a version (HTTP/0.9)', 'GET /s\r\n\r\n'],
      ['a valid request pipelined before a malformed one in the same read', 'GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /s HTTP/1.1\r\nHost : x\r\n\r\n'],
    ])('%s', async (_name, raw) => {
      await expectRefused(raw, 400, 'bad_request');
    });

    it('accepts extra spaces in the request line (llhttp does), and forwards its own clean one', async () => {
      // Node cannot show the raw request line, and nothing of it reaches the upstream: undici
      // writes a new one from the parsed method and path, so the two cannot disagree.
      for (const line of ['GET  /s HTTP/1.1', 'GET /s  HTTP/1.1']) {
        const before = upAny.seen.length;
        const reply = await send(gw.port, `${line}\r\nHost: x\r\nConnection: close\r\n\r\n`);
        expect(reply.status, line).toBe(200);
        expect(upAny.seen[before]).toMatchObject({ method: 'GET', url: '/s' });
      }
    });
  });

  describe('bad chunk framing: 400, connection closed, never forwarded', () => {
    const head = 'POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n';
    it.each([
      ['a chunk size that is not hex', `${head}zz\r\nhello\r\n0\r\n\r\n`],
      ['a signed chunk size', `${head}+5\r\nhello\r\n0\r\n\r\n`],
      ['a chunk size with a 0x prefix', `${head}0x5\r\nhello\r\n0\r\n\r\n`],
      ['an empty chunk size', `${head}\r\nhello\r\n0\r\n\r\n`],
      ['a chunk size past 2^64', `${head}1${'0'.repeat(16)}\r\nhello\r\n0\r\n\r\n`],
      ['no CRLF after the chunk data', `${head}5\r\nhelloXX0\r\n\r\n${SMUGGLED}`],
      ['a chunk longer than its size', `${head}3\r\nhello\r\n0\r\n\r\n`],
      ['a bare LF after the chunk size', `${head}5\nhello\r\n0\r\n\r\n`],
      ['a bare LF after the chunk data', `${head}5\r\nhello\n0\r\n\r\n`],
      ['a chunk extension with a bare LF', `${head}5;a\nhello\r\n0\r\n\r\n`],
      ['a chunk extension with a control character', `${head}5;a=\x01\r\nhello\r\n0\r\n\r\n`],
      ['a chunk extension with a bare CR', `${head}5;a=b\rc\r\nhello\r\n0\r\n\r\n`],
      // Node bounds chunk extensions at 16 KiB (CVE-2024-22019).
      ['an oversized chunk extension', `${head}5;${'a'.repeat(20_000)}\r\nhello\r\n0\r\n\r\n`],
    ])('%s', async (_name, raw) => {
      // All in one read: the gateway decides after Node has parsed it all, so not even the head
      // of such a request is sent upstream.
      await expectRefused(raw, 400, 'bad_request');
    });

    it('a bad chunk arriving after the head was forwarded: 400, and the upstream never gets a complete request', async () => {
      const seenBefore = seenTotal();
      const arrivalsBefore = arrivals.length;
      const reply = await send(gw.port, [`${head}5\r\nhello\r\n`, 'zz\r\nworld\r\n0\r\n\r\n'], { gapMs: 300 });
      expect(reply.status, reply.text).toBe(400);
      expect(reply.json?.error.code).toBe('bad_request');
      expect(reply.closed).toBe(true);
      await sleep(100);
      // The head and the first chunk streamed on before the bad chunk came: the upstream saw
      // the request start, and then saw it cut.
      expect(arrivals.slice(arrivalsBefore)).toEqual(['POST /c']);
      expect(seenTotal()).toBe(seenBefore);
      await expectStillServing();
    });
  });

  describe('Host confusion', () => {
    it.each([
      ['two Host headers naming different hosts', 'GET /h HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n'],
      ['two Host headers naming the same host', 'GET /h HTTP/1.1\r\nHost: a.example\r\nHost: a.example\r\n\r\n'],
      ['two Host headers, different case', 'GET /h HTTP/1.1\r\nhost: b.example\r\nHOST: a.example\r\n\r\n'],
      ['an HTTP/1.1 request without Host', 'GET /h HTTP/1.1\r\nX-A: b\r\n\r\n'],
      ['an HTTP/1.1 absolute-form request without Host', 'GET http://a.example/h HTTP/1.1\r\nX-A: b\r\n\r\n'],
      ['absolute-form and two Host headers', 'GET http://a.example/h HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n'],
      ['two Host headers, then a pipelined request', `GET /h HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n${SMUGGLED}`],
    ])('%s: 400', async (_name, raw) => {
      await expectRefused(raw, 400, 'bad_request');
    });

    it.each([
      ['a Host list in one field', 'GET /h HTTP/1.1\r\nHost: a.example, b.example\r\n\r\n'],
      ['absolute-form naming another host than Host', 'GET http://a.example/h HTTP/1.1\r\nHost: b.example\r\n\r\n'],
      ['absolute-form naming another host than Host, other port and case', 'GET http://a.example:8080/h HTTP/1.1\r\nHost: B.example:8080\r\n\r\n'],
      ['absolute-form with userinfo', 'GET http://b.example@a.example/h HTTP/1.1\r\nHost: a.example\r\n\r\n'],
    ])('%s: 400 (routing refusal: the connection may stay open)', async (_name, raw) => {
      await expectRefused(raw, 400, 'bad_request', { closes: false });
    });

    async function routedTo(raw: string): Promise<{ up: 'a' | 'b' | 'any'; host: string | undefined }> {
      const before = { a: upA.seen.length, b: upB.seen.length, any: upAny.seen.length };
      const reply = await send(gw.port, raw);
      expect(reply.status, reply.text).toBe(200);
      const got = ([['a', upA], ['b', upB], ['any', upAny]] as const).filter(([name, up]) => up.seen.length > before[name]);
      expect(got).toHaveLength(1);
      const [name, up] = got[0]!;
      return { up: name, host: up.seen.at(-1)!.headers.host };
    }

    it('routes an absolute-form target by its own host, never by the Host header', async () => {
      // Same host in both, compared after normalisation (case, port, trailing dot).
      expect(await routedTo('GET http://a.example/h HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n')).toEqual({ up: 'a', host: 'a.example' });
      expect(await routedTo('GET http://B.Example:80/h HTTP/1.1\r\nHost: b.example.\r\nConnection: close\r\n\r\n')).toEqual({ up: 'b', host: 'B.Example:80' });
      // HTTP/1.0 needs no Host: the target's host alone routes it.
      expect(await routedTo('GET http://b.example/h HTTP/1.0\r\n\r\n')).toEqual({ up: 'b', host: 'b.example' });
      // Origin-form: the Host header routes it.
      expect(await routedTo('GET /h HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n')).toEqual({ up: 'a', host: 'a.example' });
    });

    it.each([
      ['in origin-form', 'GET /f#frag HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['after a query', 'GET /f?q=1#frag HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['alone', 'GET /f# HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['in absolute-form', 'GET http://a.example/f#frag HTTP/1.1\r\nHost: a.example\r\n\r\n'],
    ])('a #fragment %s: 400', async (_name, raw) => {
      await expectRefused(raw, 400, 'bad_request', { closes: false });
    });
  });

  describe('header count (limits.maxHeaderCount, default 100)', () => {
    it('serves 100 header fields and forwards every one', async () => {
      const before = upAny.seen.length;
      const reply = await send(gw.port, `GET /n HTTP/1.1\r\nHost: x\r\n${headerLines(98)}Connection: close\r\n\r\n`);
      expect(reply.status, reply.text).toBe(200);
      const seen = upAny.seen[before]!;
      expect(seen.headers['x-h-0001']).toBe('v');
      expect(seen.headers['x-h-0098']).toBe('v');
    });

    it('answers 431 to 101 header fields, never forwards them, and counts the refusal', async () => {
      const before = await metricValue(gw.gateway, 'gateway_requests_total', { route: '_unmatched', status: '431' });
      await expectRefused(`GET /n HTTP/1.1\r\nHost: x\r\n${headerLines(100)}\r\n`, 431, 'headers_too_large');
      expect(await metricValue(gw.gateway, 'gateway_requests_total', { route: '_unmatched', status: '431' })).toBe(before + 1);
    });

    it('answers 431 to an upgrade with 101 header fields', async () => {
      await expectRefused(`GET /ws/n HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${headerLines(96)}\r\n`, 431, 'headers_too_large');
    });
  });

  describe('slow and idle clients (headersTimeout 2s, requestTimeout 3s)', () => {
    it('closes a connection that never sends a byte at headersTimeout', async () => {
      const started = performance.now();
      const reply = await send(gw.port, [], { waitMs: 6000 });
      expect(reply.closed).toBe(true);
      expect(performance.now() - started).toBeLessThan(4500);
      if (reply.status !== null) expect(reply.json?.error.code).toBe('request_timeout');
      await expectStillServing();
    });

    it('cuts a slowloris on the second request of a keep-alive connection', async () => {
      const first = 'GET /k HTTP/1.1\r\nHost: x\r\n\r\n';
      const drip = 'GET /k2 HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.split('');
      const arrivalsBefore = arrivals.length;
      const started = performance.now();
      const reply = await send(gw.port, [first, ...drip], { gapMs: 100, waitMs: 8000 });
      expect(reply.closed).toBe(true);
      expect(performance.now() - started).toBeLessThan(6000);
      expect(reply.status).toBe(200); // the first one was served
      expect(arrivals.slice(arrivalsBefore)).toEqual(['GET /k']);
      await expectStillServing();
    });

    // slow-clients.test.ts checks that a dripped Content-Length body is cut; here the client must
    // also get its 408, for both framings, since no byte of a response had been written yet.
    it.each([
      ['Content-Length', 'Content-Length: 100', 'y'.repeat(100).split('')],
      ['chunked', 'Transfer-Encoding: chunked', '1\r\nx\r\n'.repeat(100).match(/.{1,3}/gs)!],
    ])('cuts a dripped %s body at requestTimeout with a JSON 408; the upstream never gets a complete request', async (_name, framing, drip) => {
      const seenBefore = seenTotal();
      const started = performance.now();
      const reply = await send(gw.port, [`POST /d HTTP/1.1\r\nHost: x\r\n${framing}\r\n\r\n`, ...drip], { gapMs: 100, waitMs: 8000 });
      expect(reply.closed).toBe(true);
      expect(performance.now() - started).toBeLessThan(5500);
      expect(reply.status, reply.text).toBe(408);
      expect(reply.json?.error.code).toBe('request_timeout');
      expect(reply.responses).toBe(1);
      await sleep(50);
      expect(seenTotal()).toBe(seenBefore);
      await expectStillServing();
    });
  });

  describe('WebSocket upgrade abuse', () => {
    const upgradeHead = (path: string, extra = ''): string =>
      `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}`;

    it('never passes bytes after an upgrade head on to a route without websocket: true', async () => {
      const arrivalsBefore = arrivals.length;
      const reply = await send(gw.port, `${upgradeHead('/plain')}\r\n${SMUGGLED}`);
      expect(reply.status).toBe(200);
      expect(reply.responses).toBe(1);
      expect(reply.closed).toBe(true);
      await sleep(50);
      expect(arrivals.slice(arrivalsBefore)).toEqual(['GET /plain']);
      expect(upAny.seen.at(-1)!.headers.upgrade).toBeUndefined();
      await expectStillServing();
    });

    it('never tunnels when the upstream answers the handshake without 101', async () => {
      // upAny has no upgrade handler: it answers the handshake with a plain 200.
      const arrivalsBefore = arrivals.length;
      const reply = await send(gw.port, `${upgradeHead('/ws/x')}\r\n${SMUGGLED}`);
      expect(reply.status, reply.text).toBe(502);
      expect(reply.closed).toBe(true);
      await sleep(50);
      expect(arrivals.slice(arrivalsBefore)).toEqual(['GET /ws/x']);
      await expectStillServing();
    });

    it.each([
      ['a Content-Length body', `${upgradeHead('/ws/x', 'Content-Length: 5\r\n\r\nhello')}`],
      ['a chunked body', `${upgradeHead('/ws/x', 'Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n')}`],
      ['two Host headers', `${upgradeHead('/ws/x', 'Host: a.example\r\n\r\n')}`],
      // Node's own missing-Host check skips upgrades altogether.
      ['no Host header', `${upgradeHead('/ws/x').replace('Host: x\r\n', '')}\r\n`],
    ])('refuses an upgrade with %s: 400', async (_name, raw) => {
      await expectRefused(raw, 400, 'bad_request');
    });
  });
});

describe('headers past Node\'s own limit of 2000', () => {
  let upstream: TestUpstream;

  beforeAll(async () => {
    upstream = new TestUpstream(echo);
    // The upstream must not drop or refuse them either.
    upstream.server.maxHeadersCount = 0;
    (upstream.server as { maxHeaderSize?: number }).maxHeaderSize = 256 * 1024;
    await upstream.start();
  });

  afterAll(async () => {
    await upstream.stop();
  });

  const lateAuthorization = `GET /late HTTP/1.1\r\nHost: x\r\n${headerLines(2100)}Authorization: Bearer late\r\nConnection: close\r\n\r\n`;

  it('forwards a late Authorization intact when maxHeaderCount allows it', async () => {
    const gw = await startGateway(simpleRoutes([upstream.url]), { limits: { maxHeaderCount: 10_000, maxHeaderSize: '128kb' } });
    try {
      const before = upstream.seen.length;
      const reply = await send(gw.port, lateAuthorization, { waitMs: 5000 });
      expect(reply.status, reply.text.slice(0, 300)).toBe(200);
      const seen = upstream.seen[before]!;
      expect(seen.headers.authorization).toBe('Bearer late');
      expect(seen.headers['x-h-2100']).toBe('v');
    } finally {
      await gw.stop();
    }
  });

  it('answers 431 when they pass maxHeaderCount, never drops them silently', async () => {
    const gw = await startGateway(simpleRoutes([upstream.url]), { limits: { maxHeaderCount: 2000, maxHeaderSize: '128kb' } });
    try {
      const before = upstream.seen.length;
      const reply = await send(gw.port, lateAuthorization, { waitMs: 5000 });
      expect(reply.status, reply.text.slice(0, 300)).toBe(431);
      expect(reply.json?.error.code).toBe('headers_too_large');
      expect(upstream.seen.length).toBe(before);
      const ok = await request(`${gw.url}/ok`);
      expect(ok.statusCode).toBe(200);
      await ok.body.dump();
    } finally {
      await gw.stop();
    }
  });
});

describe('10 000 idle connections', () => {
  /** Opens `count` idle connections from a child process (its own descriptor budget), in batches. */
  function openIdleConnections(port: number, count: number): Promise<{ report(): Promise<{ closedEarly: number }>; close(): Promise<void> }> {
    const script = `
      const net = require('node:net');
      const [port, total, batch] = process.argv.slice(1).map(Number);
      const sockets = [];
      let closedEarly = 0;
      let closing = false;
      (async () => {
        for (let i = 0; i < total; i += batch) {
          const n = Math.min(batch, total - i);
          await Promise.all(Array.from({ length: n }, () => new Promise((resolve, reject) => {
            const s = net.connect(port, '127.0.0.1');
            s.once('connect', resolve);
            s.once('error', reject);
            s.on('close', () => { if (!closing) closedEarly++; });
            sockets.push(s);
          })));
        }
        process.stdout.write(JSON.stringify({ open: sockets.length }) + '\\n');
      })().catch((err) => { process.stdout.write(JSON.stringify({ error: String(err) }) + '\\n'); process.exit(1); });
      process.stdin.on('data', () => process.stdout.write(JSON.stringify({ closedEarly }) + '\\n'));
      process.stdin.on('end', () => { closing = true; for (const s of sockets) s.destroy(); process.exit(0); });
    `;
    const child = spawn(process.execPath, ['-e', script, String(port), String(count), '500'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines: string[] = [];
    let buffer = '';
    child.stdout.on('data', (c: Buffer) => {
      buffer += c.toString('utf8');
      let nl;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        lines.push(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
      }
    });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    const nextLine = async (): Promise<Record<string, unknown>> => {
      const line = await until('a line from the connection opener', () => lines.shift(), 60_000);
      return JSON.parse(line) as Record<string, unknown>;
    };
    return nextLine().then((first) => {
      if (first.error !== undefined || first.open !== count) {
        child.kill('SIGKILL');
        throw new Error(`could not open ${count} connections: ${JSON.stringify(first)}`);
      }
      return {
        async report() {
          child.stdin.write('report\n');
          return await nextLine() as { closedEarly: number };
        },
        async close() {
          child.stdin.end();
          await exited;
        },
      };
    });
  }

  /** How many connections this process and the opener can each hold, from `ulimit -n`. */
  function connectionBudget(): number {
    const wanted = 10_000;
    const limitText = execFileSync('sh', ['-c', 'ulimit -n']).toString().trim();
    if (limitText === 'unlimited') return wanted;
    let inUse = 256;
    try {
      inUse = readdirSync('/proc/self/fd').length;
    } catch {
      // not Linux: keep the estimate
    }
    return Math.max(0, Math.min(wanted, Number(limitText) - inUse - 512));
  }

  it('still serves a normal request while they are open', async (ctx) => {
    const count = connectionBudget();
    if (count < 10_000) {
      // eslint-disable-next-line no-console
      console.warn(`ulimit -n is too low for 10 000 idle connections: testing with ${count}`);
    }
    if (count < 100) ctx.skip();
    const upstream = await new TestUpstream(echo).start();
    // Long enough for all of them to stay open while the test runs.
    const gw = await startGateway(simpleRoutes([upstream.url]), { limits: { headersTimeout: '2m', requestTimeout: '5m' } });
    try {
      const idle = await openIdleConnections(gw.port, count);
      try {
        const started = performance.now();
        const res = await request(`${gw.url}/ok`);
        expect(res.statusCode).toBe(200);
        await res.body.dump();
        expect(performance.now() - started).toBeLessThan(5000);
        // They were all still open while it was served.
        expect((await idle.report()).closedEarly).toBe(0);
      } finally {
        await idle.close();
      }
      const after = await request(`${gw.url}/ok`);
      expect(after.statusCode).toBe(200);
      await after.body.dump();
    } finally {
      await gw.stop();
      await upstream.stop();
    }
  }, 120_000);
});
