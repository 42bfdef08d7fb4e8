// The rate-limiter tests trust this helper to produce real outages, stalls and clusters; these
// tests check that it does, with real redis-server processes.

import { existsSync } from 'node:fs';
import net from 'node:net';
import { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TestRedis, TestRedisCluster } from './redis.js';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function rawConnect(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}

// Clients the tests open; closed after each test whatever its outcome.
const clients: (Redis | Cluster)[] = [];

function client(redis: TestRedis): Redis {
  const c = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

describe('TestRedis', () => {
  let redis: TestRedis;

  beforeAll(async () => {
    redis = await TestRedis.start();
  });

  afterAll(async () => {
    await redis?.stop();
  });

  it('serves SET/GET on its own port, never 6379', async () => {
    expect(redis.port).not.toBe(6379);
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(redis.running).toBe(true);
    const c = client(redis);
    await c.connect();
    await c.set('k', 'v');
    expect(await c.get('k')).toBe('v');
  });

  it('runs one-off commands', async () => {
    await redis.command('FLUSHALL');
    await redis.command('SET', 'a', '1');
    expect(await redis.command('DBSIZE')).toBe(1);
    expect(await redis.command('GET', 'a')).toBe('1');
    expect(await redis.command('GET', 'missing')).toBeNull();
    expect(String(await redis.command('INFO', 'server'))).toContain(`tcp_port:${redis.port}`);
    expect(await redis.command('CONFIG', 'GET', 'save')).toEqual(['save', '']);
  });

  it('kill() makes connections fail, restart() brings it back on the same port', async () => {
    const before = redis.pid;
    await redis.kill();
    expect(redis.running).toBe(false);
    expect(isAlive(before!)).toBe(false);
    // ioredis reports the refused connection only as "Connection is closed."; a raw socket shows why.
    await expect(client(redis).connect()).rejects.toThrow();
    await expect(rawConnect(redis.port)).rejects.toThrow(/ECONNREFUSED/);
    await expect(redis.command('PING')).rejects.toThrow();

    const port = redis.port;
    await redis.restart();
    expect(redis.port).toBe(port);
    expect(redis.running).toBe(true);
    expect(redis.pid).not.toBe(before);
    const c = client(redis);
    await c.connect();
    // No persistence: an outage loses every counter, as it would for a cache-only Redis.
    expect(await c.get('k')).toBeNull();
    await c.set('k', 'again');
    expect(await c.get('k')).toBe('again');
  });

  it('pause() stalls commands on an open connection', async () => {
    const c = client(redis);
    await c.connect();
    await c.ping();
    await redis.pause(500);
    const started = performance.now();
    expect(await c.ping()).toBe('PONG');
    expect(performance.now() - started).toBeGreaterThanOrEqual(400);
  });

  it('debugSleep() blocks the server', async () => {
    const c = client(redis);
    await c.connect();
    redis.debugSleep(1);
    // Fire-and-forget: give the command time to reach the server before measuring.
    await new Promise((r) => setTimeout(r, 100));
    const started = performance.now();
    expect(await c.ping()).toBe('PONG');
    expect(performance.now() - started).toBeGreaterThanOrEqual(700);
  });

  it('stop() leaves no process and no temp dir, and can be called twice', async () => {
    const other = await TestRedis.start({ args: ['--maxmemory', '10mb'] });
    expect(await other.command('CONFIG', 'GET', 'maxmemory')).toEqual(['maxmemory', String(10 * 1024 * 1024)]);
    const pid = other.pid!;
    expect(isAlive(pid)).toBe(true);
    await other.stop();
    await other.stop();
    expect(() => process.kill(pid, 0)).toThrow();
    expect(other.running).toBe(false);
    expect(existsSync(other.dir)).toBe(false);
  });

  it('start() fails with the server output when redis-server rejects its arguments', async () => {
    await expect(TestRedis.start({ args: ['--no-such-option', 'x'] })).rejects.toThrow(/no-such-option/);
  });
});

describe('TestRedisCluster', () => {
  let cluster: TestRedisCluster;

  beforeAll(async () => {
    cluster = await TestRedisCluster.start();
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  it('is ok on every node', async () => {
    expect(cluster.nodes).toHaveLength(3);
    for (const node of cluster.nodes) {
      expect(node.port + 10_000).toBeLessThanOrEqual(65_535);
      expect(String(await node.command('CLUSTER', 'INFO'))).toContain('cluster_state:ok');
    }
  });

  it('serves keys on different slots through a Cluster client', async () => {
    const c = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
    c.on('error', () => undefined);
    clients.push(c);
    const keys = ['a', 'b', 'c', '{x}1'];
    for (const key of keys) await c.set(key, `v-${key}`);
    for (const key of keys) expect(await c.get(key)).toBe(`v-${key}`);

    // The keys must really be spread over the masters, or MOVED handling goes untested.
    const sizes = await Promise.all(cluster.nodes.map((n) => n.command('DBSIZE')));
    expect(sizes.filter((s) => typeof s === 'number' && s > 0).length).toBeGreaterThanOrEqual(2);
    expect(sizes.reduce<number>((sum, s) => sum + Number(s), 0)).toBe(keys.length);
  });

  it('stop() leaves no node process', async () => {
    const pids = cluster.nodes.map((n) => n.pid!);
    expect(pids.every(isAlive)).toBe(true);
    await cluster.stop();
    await cluster.stop();
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    expect(cluster.urls).toHaveLength(3);
  });
});
