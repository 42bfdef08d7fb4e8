// Memory under a flood of distinct keys (a scan, spoofed addresses, one key per request): Redis
// must hold a key only while it still limits (the script's TTL), and the in-process stores no more
// than their LRU bound, however many keys pass.

import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisConfig } from '../../../src/config/types.js';
import { DEFAULT_LOCAL_MAX_KEYS, gcraParams, LocalStore, RedisStore, type Verdict } from '../../../plugins/rate-limit/index.js';
import { TestRedis } from '../../helpers/redis.js';
import { sleep, until } from '../../helpers/wait.js';
import { RecordingEvents } from './recording-events.js';

const KEYS = 1_000_000;
const IN_FLIGHT = 2_000;
const INSTANCES_KEY = 'gw:_instances';
// Each key is spent from once: limit 10 per second means a period of 100 ms, and the script
// expires a key when its TAT is reached, one period after its only request.
const PARAMS = gcraParams({ limit: 10, windowMs: 1_000, burst: 10 });
const TTL_MS = Math.ceil(PARAMS.periodUs / 1_000);
// Redis reclaims expired keys lazily and in sampling cycles, so DBSIZE still counts keys that
// expired this long ago (observed here: up to ~200 ms at 200 000 writes/s).
const REDIS_EXPIRY_LAG_MS = 1_000;


const keyOf = (i: number): string => `gw:flood:{10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}-${i}}`;

async function keysIn(redis: TestRedis): Promise<number> {
  const size = Number(await redis.command('DBSIZE'));
  const instances = Number(await redis.command('EXISTS', INSTANCES_KEY));
  return size - instances;
}

async function usedMemory(redis: TestRedis): Promise<number> {
  const info = String(await redis.command('INFO', 'memory'));
  const match = /used_memory:(\d+)/.exec(info);
  if (match === null) throw new Error(`no used_memory in INFO memory:\n${info}`);
  return Number(match[1]);
}

let redis: TestRedis;
const stores: RedisStore[] = [];

function newStore(localMaxKeys?: number): { store: RedisStore; events: RecordingEvents } {
  const events = new RecordingEvents();
  // Throughput, not the time budget, is under test: a long commandTimeout keeps a busy machine
  // from turning one slow batch into an outage, which would send keys to the fallback instead.
  const config: RedisConfig = { url: redis.url, cluster: null, keyPrefix: 'gw:', commandTimeoutMs: 5_000, failureMode: 'local' };
  const store = new RedisStore({ config, events, ...(localMaxKeys === undefined ? {} : { localMaxKeys }) });
  stores.push(store);
  store.start();
  return { store, events };
}

beforeAll(async () => {
  redis = await TestRedis.start();
});

afterAll(async () => {
  await Promise.all(stores.splice(0).map((s) => s.stop()));
  await redis?.stop();
});

describe('memory under a flood of distinct keys', () => {
  it(`${KEYS} distinct keys through Redis: the keyspace holds only keys written within the last TTL (${TTL_MS} ms), then empties, and used_memory returns to its baseline`, async () => {
    const { store, events } = newStore();
    await until('store up', () => store.up, 10_000);
    // The baseline includes the loaded script and the instances key, which stay.
    expect(await store.decide([PARAMS], ['gw:flood:{warm-up}'])).toMatchObject({ kind: 'decided', instances: 1 });
    await until('warm-up key expired', async () => (await keysIn(redis)) === 0, TTL_MS + 5_000);
    const baseline = await usedMemory(redis);

    const waves: { readonly endedAt: number; readonly size: number }[] = [];
    const samples: { size: number; bound: number; memory: number }[] = [];
    /** Keys of the waves still running at `since`: none of the others was written after it. */
    const writtenSince = (since: number): number => waves.filter((w) => w.endedAt >= since).reduce((n, w) => n + w.size, 0);
    /** Every key in Redis by SCAN, with PTTL: an expired key reads as absent (-2) however long Redis keeps it. */
    const liveKeys = async (): Promise<{ live: number; held: number; maxPttl: number; bound: number }> => {
      const bound = writtenSince(performance.now() - TTL_MS);
      const client = new Redis(redis.url, { maxRetriesPerRequest: 0 });
      client.on('error', () => undefined);
      try {
        let cursor = '0';
        let live = 0;
        let held = 0;
        let maxPttl = -2;
        do {
          const [nextCursor, keys] = await client.scan(cursor, 'MATCH', 'gw:flood:*', 'COUNT', 5_000);
          cursor = nextCursor;
          held += keys.length;
          const pipeline = client.pipeline();
          for (const key of keys) pipeline.pttl(key);
          for (const [err, pttl] of (await pipeline.exec()) ?? []) {
            if (err !== null) throw err;
            if (typeof pttl === 'number' && pttl > 0) live++;
            if (typeof pttl === 'number' && pttl > maxPttl) maxPttl = pttl;
          }
        } while (cursor !== '0');
        return { live, held, maxPttl, bound };
      } finally {
        client.disconnect();
      }
    };

    let allowed = 0;
    for (let next = 0; next < KEYS; ) {
      const size = Math.min(IN_FLIGHT, KEYS - next);
      const pending: (Verdict | Promise<Verdict>)[] = new Array<Verdict | Promise<Verdict>>(size);
      for (let j = 0; j < size; j++) pending[j] = store.decide([PARAMS], [keyOf(next + j)]);
      const verdicts = await Promise.all(pending);
      for (const v of verdicts) if (v.kind === 'decided' && v.instances === 1 && v.states[0]!.allowed) allowed++;
      waves.push({ endedAt: performance.now(), size });
      next += size;
      if (waves.length % 50 === 0) {
        const at = performance.now();
        samples.push({ size: await keysIn(redis), bound: writtenSince(at - TTL_MS - REDIS_EXPIRY_LAG_MS), memory: await usedMemory(redis) });
      }
    }
    const scan = await liveKeys();
    expect(events.errorDetails).toEqual([]);
    expect(allowed).toBe(KEYS);
    // Whatever the flood's size, Redis holds only recent keys: what still limits, plus what expired
    // so recently that Redis' active expiry (ten cycles a second) has not reclaimed it yet.
    for (const s of samples) expect(s.size).toBeLessThanOrEqual(s.bound);
    // Counted key by key, the live ones are exactly those written within the last TTL.
    expect(scan.maxPttl).toBeLessThanOrEqual(TTL_MS);
    expect(scan.live).toBeLessThanOrEqual(scan.bound);

    // used_memory during the flood stays small too: a few MB for ~60 000 live keys at most.
    for (const s of samples) expect(s.memory - baseline).toBeLessThanOrEqual(32 * 1024 * 1024);
    await sleep(TTL_MS + 1_000);
    const afterTtl = await keysIn(redis);
    const after = await usedMemory(redis);
    expect(afterTtl).toBe(0);
    expect(Math.abs(after - baseline)).toBeLessThanOrEqual(4 * 1024 * 1024);
  }, 180_000);

  it(`${KEYS} distinct keys through the local fallback while Redis is down keep at most localMaxKeys (10 000) in the process`, async () => {
    const { store } = newStore(10_000);
    await until('store up', () => store.up, 10_000);
    await redis.kill();
    await until('store down', () => !store.up, 10_000);
    let allowed = 0;
    for (let i = 0; i < KEYS; i++) {
      const v = await store.decide([PARAMS], [keyOf(i)]);
      if (v.kind === 'decided' && v.states[0]!.allowed) allowed++;
      if (i % 100_000 === 0) expect(store.fallbackKeys).toBeLessThanOrEqual(10_000);
    }
    expect(allowed).toBe(KEYS);
    expect(store.fallbackKeys).toBe(10_000);
  }, 120_000);

  it(`a LocalStore with the default bound holds at most DEFAULT_LOCAL_MAX_KEYS (${DEFAULT_LOCAL_MAX_KEYS}) of ${KEYS} distinct keys`, () => {
    const store = new LocalStore();
    let allowed = 0;
    for (let i = 0; i < KEYS; i++) {
      const v = store.decide([PARAMS], [keyOf(i)]);
      if (v.kind === 'decided' && v.states[0]!.allowed) allowed++;
    }
    expect(allowed).toBe(KEYS);
    expect(store.size).toBe(DEFAULT_LOCAL_MAX_KEYS);
  }, 180_000);

  it('regression: evicting from a full LocalStore costs about the same at the default bound (100 000) as at 1 000 keys', () => {
    // Finding the oldest key with a fresh keys() iterator walked over every entry deleted from the
    // front of the Map since it was last compacted: each eviction cost more the larger the bound.
    const perDecisionUs = (maxKeys: number, evictions: number): number => {
      const store = new LocalStore({ maxKeys });
      for (let i = 0; i < maxKeys; i++) store.decide([PARAMS], [keyOf(i)]);
      const started = performance.now();
      for (let i = maxKeys; i < maxKeys + evictions; i++) store.decide([PARAMS], [keyOf(i)]);
      return ((performance.now() - started) * 1_000) / evictions;
    };
    perDecisionUs(1_000, 20_000); // JIT warm-up
    const small = perDecisionUs(1_000, 100_000);
    const large = perDecisionUs(DEFAULT_LOCAL_MAX_KEYS, 100_000);
    // A larger Map is slower to touch (cache misses), not this much slower (it was 30-50x).
    expect(large).toBeLessThanOrEqual(10 * small);
  }, 60_000);
});
