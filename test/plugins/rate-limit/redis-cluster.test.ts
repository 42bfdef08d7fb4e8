// RedisStore on a real three-master Redis Cluster: the script runs on the node owning each key's
// slot, so exactness must hold per key, keys must be isolated wherever they land, and a request
// whose policies span slots gets one answer per policy.

import calculateSlot from 'cluster-key-slot';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RedisConfig } from '../../../src/config/types.js';
import { gcraParams, RedisStore, type Verdict } from '../../../plugins/rate-limit/index.js';
import { type TestRedis, TestRedisCluster } from '../../helpers/redis.js';
import { sleep, until } from '../../helpers/wait.js';
import { RecordingEvents } from './recording-events.js';

// The time budget is not what these tests check; a busy 2-core machine must not turn it into a
// spurious outage.
const COMMAND_TIMEOUT_MS = 1_000;


let cluster: TestRedisCluster;
/** Slot → the node serving it, read from the cluster itself. */
const owners = new Map<number, TestRedis>();
const stores: RedisStore[] = [];
let keySeq = 0;

function newStore(): { store: RedisStore; events: RecordingEvents } {
  const events = new RecordingEvents();
  const config: RedisConfig = { url: null, cluster: cluster.urls, keyPrefix: 'gw:', commandTimeoutMs: COMMAND_TIMEOUT_MS, failureMode: 'open' };
  const store = new RedisStore({ config, events, heartbeatIntervalMs: 200, probeIntervalMs: 200 });
  stores.push(store);
  store.start();
  return { store, events };
}

async function upStore(): Promise<{ store: RedisStore; events: RecordingEvents }> {
  const s = newStore();
  await until('cluster store up', () => s.store.up, 10_000);
  return s;
}

function ownerOf(key: string): TestRedis {
  const node = owners.get(calculateSlot(key));
  if (node === undefined) throw new Error(`no node serves the slot of ${key}`);
  return node;
}

/** `count` fresh keys of `policy`, each served by a different node. */
function keysOnDifferentNodes(policy: string, count: number): string[] {
  const found = new Map<TestRedis, string>();
  while (found.size < count) {
    const key = `gw:${policy}:{client-${++keySeq}}`;
    const node = ownerOf(key);
    if (!found.has(node)) found.set(node, key);
  }
  return [...found.values()];
}

const allowedOf = (v: Verdict): boolean[] => (v.kind === 'decided' ? v.states.map((s) => s.allowed) : []);

beforeAll(async () => {
  cluster = await TestRedisCluster.start();
  const slots = await cluster.nodes[0]!.command('CLUSTER', 'SLOTS');
  if (!Array.isArray(slots)) throw new Error(`CLUSTER SLOTS answered ${String(slots)}`);
  for (const range of slots) {
    if (!Array.isArray(range)) continue;
    const [from, to, master] = range as [number, number, unknown[]];
    const node = cluster.nodes.find((n) => n.port === Number(master[1]));
    if (node === undefined) throw new Error(`slot range ${from}-${to} served by an unknown port ${String(master[1])}`);
    for (let slot = from; slot <= to; slot++) owners.set(slot, node);
  }
}, 60_000);

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.stop()));
});

afterAll(async () => {
  await Promise.all(stores.splice(0).map((s) => s.stop()));
  await cluster?.stop();
}, 60_000);

describe('RedisStore on a Redis Cluster', () => {
  it('comes up and decides through the node owning the key', async () => {
    const { store, events } = await upStore();
    const key = `gw:per-ip:{client-${++keySeq}}`;
    const verdict = await store.decide([gcraParams({ limit: 10, windowMs: 1_000, burst: 10 })], [key]);
    expect(verdict).toMatchObject({ kind: 'decided', instances: 1, states: [{ allowed: true, remaining: 9 }] });
    expect(await ownerOf(key).command('EXISTS', key)).toBe(1);
    expect(events.errorDetails).toEqual([]);
  });

  it('300 concurrent decisions on one key from three gateways allow exactly the burst of 50 (plus one per 200 ms elapsed)', async () => {
    const trio = await Promise.all([upStore(), upStore(), upStore()]);
    const params = gcraParams({ limit: 50, windowMs: 10_000, burst: 50 });
    const key = `gw:per-user:{user-${++keySeq}}`;
    const started = performance.now();
    const verdicts = await Promise.all(Array.from({ length: 300 }, (_, i) => trio[i % 3]!.store.decide([params], [key])));
    const elapsedMs = performance.now() - started;
    const allowed = verdicts.filter((v) => allowedOf(v)[0] === true).length;
    for (const v of verdicts) expect(v.kind).toBe('decided');
    // GCRA lets one more request through per period (10 s / 50 = 200 ms) that passes meanwhile.
    expect(allowed).toBeGreaterThanOrEqual(50);
    expect(allowed).toBeLessThanOrEqual(50 + Math.floor(elapsedMs / 200));
    for (const { events } of trio) expect(events.errorDetails).toEqual([]);
  });

  it('keeps keys on different slots and nodes apart: exhausting one leaves the other its full burst', async () => {
    const { store } = await upStore();
    const [a, b] = keysOnDifferentNodes('per-ip', 2) as [string, string];
    expect(calculateSlot(a)).not.toBe(calculateSlot(b));
    expect(ownerOf(a)).not.toBe(ownerOf(b));
    const params = gcraParams({ limit: 5, windowMs: 60_000, burst: 5 });

    const spentA: boolean[] = [];
    for (let i = 0; i < 7; i++) spentA.push(allowedOf(await store.decide([params], [a]))[0] === true);
    expect(spentA).toEqual([true, true, true, true, true, false, false]);
    const firstB = await store.decide([params], [b]);
    expect(firstB).toMatchObject({ kind: 'decided', states: [{ allowed: true, remaining: 4 }] });

    // Each key's state lives on the node that owns its slot (any other node would answer MOVED).
    expect(await ownerOf(a).command('EXISTS', a)).toBe(1);
    expect(await ownerOf(b).command('EXISTS', b)).toBe(1);
  });

  it('two policies on different slots: both states come back and one refusing refuses the request, but not all-or-nothing: the allowing policy is still spent', async () => {
    const { store } = await upStore();
    const [strictKey, looseKey] = keysOnDifferentNodes('two', 2) as [string, string];
    const strict = gcraParams({ limit: 1, windowMs: 60_000, burst: 1 });
    const loose = gcraParams({ limit: 10, windowMs: 60_000, burst: 10 });

    const first = await store.decide([strict, loose], [strictKey, looseKey]);
    expect(first).toMatchObject({ kind: 'decided', instances: 1, states: [{ allowed: true, remaining: 0 }, { allowed: true, remaining: 9 }] });
    const second = await store.decide([strict, loose], [strictKey, looseKey]);
    expect(allowedOf(second)).toEqual([false, true]);
    // #decideAcrossSlots: Redis runs a script on one slot only, so the refused request has still
    // spent from the other slot's policy.
    expect(second).toMatchObject({ states: [{ allowed: false }, { allowed: true, remaining: 8 }] });
    const third = await store.decide([strict, loose], [strictKey, looseKey]);
    expect(third).toMatchObject({ states: [{ allowed: false }, { allowed: true, remaining: 7 }] });
  });

  it('two policies on one slot (same hash tag) stay all-or-nothing: a refused request spends nothing of the other', async () => {
    const { store } = await upStore();
    const tag = `{user-${++keySeq}}`;
    const strictKey = `gw:strict:${tag}`;
    const looseKey = `gw:loose:${tag}`;
    expect(calculateSlot(strictKey)).toBe(calculateSlot(looseKey));
    const strict = gcraParams({ limit: 1, windowMs: 60_000, burst: 1 });
    const loose = gcraParams({ limit: 10, windowMs: 60_000, burst: 10 });

    expect(allowedOf(await store.decide([strict, loose], [strictKey, looseKey]))).toEqual([true, true]);
    const refused = await store.decide([strict, loose], [strictKey, looseKey]);
    expect(refused).toMatchObject({ states: [{ allowed: false }, { allowed: true, remaining: 9 }] });
    const again = await store.decide([strict, loose], [strictKey, looseKey]);
    expect(again).toMatchObject({ states: [{ allowed: false }, { allowed: true, remaining: 9 }] });
  });

  it('three stores heartbeating into the cluster each count 3 instances', async () => {
    const trio = [newStore(), newStore(), newStore()];
    await until('every store to see 3 instances', () => trio.every(({ store }) => store.up && store.instances === 3), 10_000);
    for (const { events } of trio) expect(events.instanceCounts.at(-1)).toBe(3);
    expect(await ownerOf('gw:_instances').command('ZCARD', 'gw:_instances')).toBe(3);
  });

  // Last: it takes a node away from the cluster the other tests share.
  it('a killed node: every decision on its slots resolves within commandTimeout from the fallback, and Redis decides again within 5 s of the cluster being whole', async () => {
    const events = new RecordingEvents();
    const commandTimeoutMs = 200;
    const config: RedisConfig = { url: null, cluster: cluster.urls, keyPrefix: 'gw:', commandTimeoutMs, failureMode: 'open' };
    const store = new RedisStore({ config, events, heartbeatIntervalMs: 200, probeIntervalMs: 200 });
    stores.push(store);
    store.start();
    await until('cluster store up', () => store.up, 10_000);
    // Not the node with the instances key: the probe keeps succeeding there, so the store flaps up
    // and down, and a decision sent while it is up must still give up in time.
    const instancesOwner = ownerOf('gw:_instances');
    const victim = cluster.nodes.find((n) => n !== instancesOwner)!;
    const key = keysOnDifferentNodes('node', 3).find((k) => ownerOf(k) === victim)!;
    const params = gcraParams({ limit: 1_000_000, windowMs: 1_000, burst: 1_000_000 });
    expect(await store.decide([params], [key])).toMatchObject({ kind: 'decided' });

    await victim.kill();
    const latencies: number[] = [];
    const verdicts: Verdict[] = [];
    const end = performance.now() + 3_000;
    while (performance.now() < end) {
      const started = performance.now();
      verdicts.push(await store.decide([params], [key]));
      latencies.push(performance.now() - started);
      await sleep(5);
    }
    const slowest = Math.max(...latencies);
    expect(slowest).toBeLessThanOrEqual(commandTimeoutMs + 50);
    for (const v of verdicts) expect(v).toEqual({ kind: 'store_error', allow: true });

    await victim.restart();
    await until('cluster_state ok on the returning node', async () => String(await victim.command('CLUSTER', 'INFO')).includes('cluster_state:ok'), 20_000);
    const wholeAt = performance.now();
    await until('Redis to decide the key again', async () => (await store.decide([params], [key])).kind === 'decided', 10_000);
    const resumedAt = performance.now();
    expect(resumedAt - wholeAt).toBeLessThanOrEqual(5_000);
    // The returning node holds the state again (a long period, so the key outlives the check).
    await store.decide([gcraParams({ limit: 10, windowMs: 60_000, burst: 10 })], [key]);
    expect(await victim.command('EXISTS', key)).toBe(1);
  }, 60_000);
});
