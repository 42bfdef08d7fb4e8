import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import type { RunningGateway } from '../helpers/gateway.js';
import { metricValue } from '../helpers/metrics.js';
import { useTestbed } from '../helpers/testbed.js';
import type { UpstreamBehaviour } from '../helpers/upstream.js';

// Retries, the retry budget, per-try timeouts and the circuit breaker, on real sockets.

const unavailable: UpstreamBehaviour = (_req, res) => {
  res.writeHead(503, { 'content-type': 'text/plain' });
  res.end('unavailable');
};

/** Answers after `ms`, unless the connection goes first. */
function slow(ms: number): UpstreamBehaviour {
  return (_req, res) => {
    const timer = setTimeout(() => res.end('late'), ms);
    res.on('close', () => clearTimeout(timer));
  };
}

async function call(gw: RunningGateway, init: { method?: 'GET' | 'POST'; body?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: string; ms: number }> {
  const started = performance.now();
  const res = await request(`${gw.url}/r`, init);
  const body = await res.body.text();
  return { status: res.statusCode, body, ms: performance.now() - started };
}

describe('retries', () => {
  const bed = useTestbed();

  it('sends each try of a request to a different endpoint, at most attempts + 1 of them', async () => {
    const ups = await bed.upstreams(5, unavailable);
    const gw = await bed.gatewayOver(ups, {
      balancer: 'random',
      retries: { attempts: 3, on: [503], budget: '100%' },
      outlierDetection: 'off',
    });
    for (let i = 0; i < 20; i++) {
      const id = `req-${i}`;
      const answer = await call(gw, { headers: { 'x-request-id': id } });
      expect(answer.status).toBe(503); // the last try's own answer
      const hits = ups.filter((u) => u.seen.some((s) => s.headers['x-request-id'] === id));
      const tries = ups.reduce((n, u) => n + u.seen.filter((s) => s.headers['x-request-id'] === id).length, 0);
      expect(tries).toBe(4);
      expect(hits).toHaveLength(4); // four tries, four distinct endpoints
    }
  });

  it('never sends a POST twice, even when its endpoint resets after reading the body', async () => {
    const resetting: UpstreamBehaviour = (req) => req.socket.destroy();
    const ups = await bed.upstreams(2, resetting);
    const gw = await bed.gatewayOver(ups, {
      retries: { attempts: 2, on: ['connect-failure', 'reset', '502', '503', '504'], budget: '100%' },
      outlierDetection: 'off',
    });
    for (let i = 0; i < 5; i++) {
      const answer = await call(gw, { method: 'POST', body: 'order #1' });
      expect(answer.status).toBe(502);
    }
    expect(ups[0].seen.length + ups[1].seen.length).toBe(5);
  });

  it('caps amplification with the budget when every endpoint fails: upstream hits per request ≤ 1 + budget', async () => {
    const ups = await bed.upstreams(4, (_req, res) => setTimeout(() => unavailable(_req, res, Buffer.alloc(0)), 5));
    const gw = await bed.gatewayOver(ups, {
      retries: { attempts: 3, on: [503], budget: '20%' },
      outlierDetection: 'off',
    });
    const total = 600;
    const concurrency = 60;
    let next = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        expect((await call(gw)).status).toBe(503);
      }
    }));
    const hits = ups.reduce((n, u) => n + u.seen.length, 0);
    const ratio = hits / total;
    // Without a budget every request would hit 4 endpoints. The floor of 3 concurrent retries
    // (Envoy's min_retry_concurrency) lets a little more through while concurrency ramps up.
    expect(ratio).toBeGreaterThan(1);
    expect(ratio).toBeLessThanOrEqual(1.2 + 3 / concurrency);
  });

  it('gives up on a slow endpoint after perTryTimeout and retries on another within the request timeout', async () => {
    const hanging = await bed.upstream(slow(3000));
    const fast = await bed.upstream();
    const gw = await bed.gatewayOver([hanging, fast], {
      balancer: 'round-robin',
      timeouts: { request: '5s' },
      retries: { attempts: 1, on: ['timeout'], perTryTimeout: '200ms', budget: '100%' },
      outlierDetection: 'off',
    });
    for (let i = 0; i < 4; i++) {
      const answer = await call(gw);
      expect(answer.status).toBe(200);
      expect(answer.ms).toBeLessThan(2500); // a 200 ms try then a fast one, far from the 3 s hang
    }
    expect(hanging.seen.length).toBeGreaterThan(0);
  });

  it('bounds all tries together by the request timeout', async () => {
    const ups = await bed.upstreams(3, slow(3000));
    const gw = await bed.gatewayOver(ups, {
      timeouts: { request: '500ms' },
      retries: { attempts: 2, on: ['timeout'], perTryTimeout: '300ms', budget: '100%' },
      outlierDetection: 'off',
    });
    const answer = await call(gw);
    expect(answer.status).toBe(504);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'gateway_timeout' } });
    // 300 ms, then the 200 ms left: about 500 ms, never 3 × 300 ms.
    expect(answer.ms).toBeGreaterThanOrEqual(450);
    expect(answer.ms).toBeLessThan(850);
    expect(ups.reduce((n, u) => n + u.seen.length, 0)).toBe(2);
  });
});

describe('circuit breaker', () => {
  const bed = useTestbed();

  it('answers 503 upstream_overloaded at once beyond maxPendingRequests, never queueing without bound', async () => {
    const upstream = await bed.upstream(slow(800));
    const gw = await bed.gatewayOver([upstream], {
      maxConnectionsPerEndpoint: 1,
      maxPendingRequests: 2,
      outlierDetection: 'off',
    });
    const answers = await Promise.all(Array.from({ length: 8 }, () => call(gw)));
    const served = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 503);
    expect(served).toHaveLength(3); // one on the connection, two waiting for it
    expect(refused).toHaveLength(5);
    for (const a of refused) {
      expect(JSON.parse(a.body)).toMatchObject({ error: { status: 503, code: 'upstream_overloaded' } });
      expect(a.ms).toBeLessThan(500); // refused at once, not after the queue
    }
    expect(await metricValue(gw.gateway, 'gateway_upstream_overflows_total', { upstream: 'pool' })).toBe(5);
    // Once the queue has drained, requests are served again.
    expect((await call(gw)).status).toBe(200);
  });
});
