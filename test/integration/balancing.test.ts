import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGateway, startGateway, writeRoutes } from '../helpers/gateway.js';
import { TestUpstream, echo } from '../helpers/upstream.js';

function share(upstreams: readonly TestUpstream[], total: number): number[] {
  return upstreams.map((u) => u.seen.length / total);
}

async function fire(url: string, total: number, concurrency: number): Promise<void> {
  const agent = new Agent({ connections: concurrency });
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) {
      next++;
      const res = await request(url, { dispatcher: agent });
      await res.body.dump();
      expect(res.statusCode).toBe(200);
    }
  }));
  await agent.close();
}

describe('balancing over real endpoints', () => {
  let ups: TestUpstream[];
  let gw: RunningGateway | null = null;

  beforeAll(async () => {
    ups = await Promise.all([0, 1, 2].map(() => new TestUpstream(echo).start()));
  });

  afterAll(async () => {
    await Promise.all(ups.map((u) => u.stop()));
  });

  async function run(upstream: Record<string, unknown>, total: number, concurrency = 8): Promise<number[]> {
    for (const u of ups) u.seen.length = 0;
    gw = await startGateway({ upstreams: { pool: upstream }, routes: [{ name: 'r', prefix: '/', upstream: 'pool' }] });
    try {
      await fire(`${gw.url}/x`, total, concurrency);
      return share(ups, total);
    } finally {
      await gw.stop();
    }
  }

  it('round-robin spreads 3000 requests evenly (±5 %)', async () => {
    const shares = await run({ balancer: 'round-robin', targets: ups.map((u) => ({ url: u.url })) }, 3000);
    for (const s of shares) expect(Math.abs(s - 1 / 3)).toBeLessThan(0.05);
  });

  it('weighted-round-robin follows weights 1:3 (±5 %)', async () => {
    const shares = await run({
      balancer: 'weighted-round-robin',
      targets: [{ url: ups[0]!.url, weight: 1 }, { url: ups[1]!.url, weight: 3 }],
    }, 3000);
    expect(Math.abs(shares[0]! - 0.25)).toBeLessThan(0.05);
    expect(Math.abs(shares[1]! - 0.75)).toBeLessThan(0.05);
  });

  it('least-request sends less to a slow endpoint', async () => {
    const slow = await new TestUpstream((req, res, body) => setTimeout(() => echo(req, res, body), 40)).start();
    try {
      const shares = await run({ balancer: 'least-request', targets: [...ups.slice(0, 2), slow].map((u) => ({ url: u.url })) }, 900, 12);
      const slowShare = slow.seen.length / 900;
      expect(slowShare).toBeLessThan(0.2);
      expect(shares[0]! + shares[1]!).toBeGreaterThan(0.8);
    } finally {
      await slow.stop();
    }
  });

  it('random spreads requests over every endpoint', async () => {
    const shares = await run({ balancer: 'random', targets: ups.map((u) => ({ url: u.url })) }, 1500);
    for (const s of shares) expect(Math.abs(s - 1 / 3)).toBeLessThan(0.08);
  });

  it('peak-ewma sends at least 3× more to a 1 ms endpoint than to a 20 ms one', async () => {
    const fast = await new TestUpstream((req, res, body) => setTimeout(() => echo(req, res, body), 1)).start();
    const slow = await new TestUpstream((req, res, body) => setTimeout(() => echo(req, res, body), 20)).start();
    gw = await startGateway({ upstreams: { pool: { balancer: 'peak-ewma', targets: [{ url: fast.url }, { url: slow.url }] } }, routes: [{ name: 'r', prefix: '/', upstream: 'pool' }] });
    try {
      await fire(`${gw.url}/x`, 1000, 8);
      expect(fast.seen.length + slow.seen.length).toBe(1000);
      expect(fast.seen.length).toBeGreaterThanOrEqual(3 * slow.seen.length);
    } finally {
      await gw.stop();
      await Promise.all([fast.stop(), slow.stop()]);
    }
  });

  it('consistent-hash keeps each header key on one endpoint, and spreads keys over all of them', async () => {
    for (const u of ups) u.seen.length = 0;
    gw = await startGateway({
      upstreams: { pool: { balancer: 'consistent-hash', hashOn: 'header:x-user', targets: ups.map((u) => ({ url: u.url })) } },
      routes: [{ name: 'r', prefix: '/', upstream: 'pool' }],
    });
    try {
      const home = new Map<string, string>();
      for (let round = 0; round < 3; round++) {
        for (let user = 0; user < 60; user++) {
          const res = await request(`${gw.url}/x`, { headers: { 'x-user': `user-${user}`, 'x-request-id': `u${user}-r${round}` } });
          await res.body.dump();
        }
      }
      for (const u of ups) {
        for (const seen of u.seen) {
          const user = String(seen.headers['x-request-id']).split('-')[0]!;
          expect(home.get(user) ?? u.address).toBe(u.address);
          home.set(user, u.address);
        }
      }
      expect(home.size).toBe(60);
      for (const u of ups) expect(u.seen.length).toBeGreaterThan(0);
    } finally {
      await gw.stop();
    }
  });

  it('consistent-hash on cookie:<name> keeps each session on one endpoint (sticky sessions), whatever other cookies come along', async () => {
    for (const u of ups) u.seen.length = 0;
    gw = await startGateway({
      upstreams: { pool: { balancer: 'consistent-hash', hashOn: 'cookie:session', targets: ups.map((u) => ({ url: u.url })) } },
      routes: [{ name: 'r', prefix: '/', upstream: 'pool' }],
    });
    try {
      for (let round = 0; round < 3; round++) {
        for (let session = 0; session < 40; session++) {
          // Other cookies change from request to request; only the session cookie may decide.
          const cookie = `theme=t${round}; session=s${session}; seen=${round * 100 + session}`;
          const res = await request(`${gw.url}/x`, { headers: { cookie, 'x-request-id': `s${session}-r${round}` } });
          await res.body.dump();
        }
      }
      const home = new Map<string, string>();
      for (const u of ups) {
        for (const seen of u.seen) {
          const session = String(seen.headers['x-request-id']).split('-')[0]!;
          expect(home.get(session) ?? u.address).toBe(u.address);
          home.set(session, u.address);
        }
      }
      expect(home.size).toBe(40);
      expect(ups.filter((u) => u.seen.length > 0).length).toBeGreaterThan(1);
    } finally {
      await gw.stop();
    }
  });

  it('slow start: an endpoint added by a reload gets a small share at first, its full share after the window', async () => {
    const fresh = await new TestUpstream(echo).start();
    const routes = (targets: readonly TestUpstream[]): Record<string, unknown> => ({
      upstreams: { pool: { balancer: 'round-robin', slowStart: { window: '3s', minWeight: '10%' }, targets: targets.map((u) => ({ url: u.url })) } },
      routes: [{ name: 'r', prefix: '/', upstream: 'pool' }],
    });
    gw = await startGateway(routes(ups));
    try {
      await fire(`${gw.url}/x`, 300, 4);
      await writeRoutes(gw.files, routes([...ups, fresh]));
      expect((await gw.gateway.reload()).result).toBe('success');
      await fire(`${gw.url}/x`, 400, 4);
      expect(fresh.seen.length / 400).toBeLessThan(0.12); // full share would be 0.25
      await new Promise((r) => setTimeout(r, 3100));
      const before = fresh.seen.length;
      await fire(`${gw.url}/x`, 800, 4);
      expect(Math.abs((fresh.seen.length - before) / 800 - 0.25)).toBeLessThan(0.05);
    } finally {
      await gw.stop();
      await fresh.stop();
    }
  });
});
