import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGateway, simpleRoutes, startGateway } from '../helpers/gateway.js';
import { TestUpstream } from '../helpers/upstream.js';

const MB = 1024 * 1024;
const SIZE = 50 * MB;
const CHUNK = Buffer.alloc(64 * 1024, 'x');

/** 50 MB produced chunk by chunk, never held whole. */
function body(): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= SIZE) {
        this.push(null);
        return;
      }
      sent += CHUNK.length;
      this.push(CHUNK);
    },
  });
}

const gc = (globalThis as { gc?: () => void }).gc;

function liveBytes(): number {
  gc!();
  const m = process.memoryUsage();
  // `external` already includes `arrayBuffers` (Buffers live there): adding both counted them twice.
  return m.heapUsed + m.external;
}

/**
 * Runs `transfer` while sampling live memory (after a full GC, so garbage waiting for collection
 * does not count: only what something still holds). Returns the largest growth seen.
 */
async function peakGrowth(transfer: () => Promise<void>): Promise<number> {
  const base = liveBytes();
  let peak = base;
  const sampler = setInterval(() => { peak = Math.max(peak, liveBytes()); }, 20);
  try {
    await transfer();
  } finally {
    clearInterval(sampler);
  }
  return peak - base;
}

// Client, gateway and upstream share this process, so the growth measured bounds all three
// together: nothing on the path may hold the body.
describe('streaming 50 MB both ways', () => {
  let upstream: TestUpstream;
  let gw: RunningGateway;

  beforeAll(async () => {
    expect(gc, 'vitest runs with --expose-gc').toBeTypeOf('function');
    upstream = await new TestUpstream((req, res) => {
      if (req.method === 'POST') {
        let received = 0;
        req.on('data', (c: Buffer) => { received += c.length; });
        req.on('end', () => res.end(String(received)));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      body().pipe(res);
    }, { consumeBody: false }).start();
    gw = await startGateway(simpleRoutes([upstream.url]), { limits: { bodyLimit: '100mb' } });
    const warm = await request(`${gw.url}/up`, { method: 'POST', body: Buffer.alloc(MB) });
    await warm.body.dump();
  });

  afterAll(async () => {
    await gw.stop();
    await upstream.stop();
  });

  it('uploads 50 MB chunked without holding it', async () => {
    const growth = await peakGrowth(async () => {
      const res = await request(`${gw.url}/up`, { method: 'POST', body: body() });
      expect(await res.body.text()).toBe(String(SIZE));
    });
    expect(growth).toBeLessThan(20 * MB);
  });

  it('uploads 50 MB with Content-Length without holding it', async () => {
    const growth = await peakGrowth(async () => {
      const res = await request(`${gw.url}/up`, { method: 'POST', body: body(), headers: { 'content-length': String(SIZE) } });
      expect(await res.body.text()).toBe(String(SIZE));
    });
    expect(growth).toBeLessThan(20 * MB);
  });

  it('downloads 50 MB without holding it', async () => {
    const growth = await peakGrowth(async () => {
      const res = await request(`${gw.url}/down`);
      let received = 0;
      for await (const chunk of res.body) received += (chunk as Buffer).length;
      expect(received).toBe(SIZE);
    });
    expect(growth).toBeLessThan(20 * MB);
  });
});
