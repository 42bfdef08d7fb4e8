import { connect } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGateway, simpleRoutes, startGateway } from '../helpers/gateway.js';
import { TestUpstream, echo } from '../helpers/upstream.js';

/**
 * Sends `head` and then one byte of `drip` every `everyMs`; resolves with what the gateway
 * answered and when it closed the connection.
 */
function drip(port: number, head: string, drip: string, everyMs: number): Promise<{ answer: string; closedAfterMs: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let i = 0;
    const timer = setInterval(() => {
      if (i < drip.length && !socket.destroyed) socket.write(drip[i++]!);
    }, everyMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ answer: Buffer.concat(chunks).toString('latin1'), closedAfterMs: Date.now() - started });
    });
    socket.write(head);
  });
}

describe('slow clients', () => {
  let upstream: TestUpstream;
  let gw: RunningGateway;

  beforeAll(async () => {
    upstream = await new TestUpstream(echo).start();
    gw = await startGateway(simpleRoutes([upstream.url]), { limits: { headersTimeout: '1s', requestTimeout: '2s' } });
  });

  afterAll(async () => {
    await gw.stop();
    await upstream.stop();
  });

  it('cuts a slowloris (headers dripped) at headersTimeout', async () => {
    const { answer, closedAfterMs } = await drip(gw.port, 'GET / HTTP/1.1\r\n', 'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n', 100);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(answer).toMatch(/\r\nx-request-id: [0-9a-f-]{36}\r\n/);
    expect(answer).toContain('"code":"request_timeout"');
    expect(closedAfterMs).toBeLessThan(4000);
  });

  it('cuts a dripped body at requestTimeout; the upstream never gets a complete request', async () => {
    const before = upstream.seen.length;
    const { answer, closedAfterMs } = await drip(gw.port, 'POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n', 'y'.repeat(100), 200);
    expect(closedAfterMs).toBeLessThan(5000);
    expect(answer.startsWith('HTTP/1.1 200')).toBe(false);
    expect(upstream.seen.length).toBe(before);
  });

  it('keeps serving normal requests meanwhile', async () => {
    const res = await request(`${gw.url}/ok`);
    expect(res.statusCode).toBe(200);
    await res.body.dump();
  });
});
