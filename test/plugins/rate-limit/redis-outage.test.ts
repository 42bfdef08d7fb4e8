// RedisStore against a real redis-server that dies, stalls and comes back: the promises of the
// issue are that no decision waits on Redis longer than commandTimeout, that the failure mode
// decides while Redis is away, and that Redis is used again within 5 s of its return.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RedisConfig, RedisFailureMode } from '../../../src/config/types.js';
import { type GcraParams, gcraParams, RedisStore, type RedisStoreOptions, type Verdict } from '../../../plugins/rate-limit/index.js';
import { TestRedis } from '../../helpers/redis.js';
import { sleep, until } from '../../helpers/wait.js';
import { RecordingEvents } from './recording-events.js';

const COMMAND_TIMEOUT_MS = 100;
// What a decision may take beyond commandTimeout: the batching turn and timer lateness on a busy
// 2-core machine.
const SLACK_MS = 50;
const RECOVERY_MS = 5_000;
const HEARTBEAT_MS = 200;

interface Timed {
  readonly startedAt: number;
  readonly ms: number;
  readonly verdict: Verdict;
}

async function timed(store: RedisStore, params: GcraParams, key: string): Promise<Timed> {
  const startedAt = performance.now();
  const verdict = await store.decide([params], [key]);
  return { startedAt, ms: performance.now() - startedAt, verdict };
}

/** Issues one decision every `everyMs` for `forMs`, without waiting for any of them to finish. */
async function stream(store: RedisStore, params: GcraParams, key: string, forMs: number, everyMs: number): Promise<Timed[]> {
  const pending: Promise<Timed>[] = [];
  const started = performance.now();
  while (performance.now() - started < forMs) {
    pending.push(timed(store, params, key));
    await sleep(everyMs);
  }
  return Promise.all(pending);
}

const fromRedis = (v: Verdict): boolean => v.kind === 'decided' && v.instances === 1;

let redis: TestRedis;
const stores: RedisStore[] = [];
let keySeq = 0;
/** A key no earlier test has spent from, in Redis or in a fallback store. */
const freshKey = (policy = 'per-ip'): string => `gw:${policy}:{client-${++keySeq}}`;

function newStore(failureMode: RedisFailureMode, options: Partial<Omit<RedisStoreOptions, 'config'>> = {}, commandTimeoutMs = COMMAND_TIMEOUT_MS): { store: RedisStore; events: RecordingEvents } {
  const events = new RecordingEvents();
  const config: RedisConfig = { url: redis.url, cluster: null, keyPrefix: 'gw:', commandTimeoutMs, failureMode };
  const store = new RedisStore({ heartbeatIntervalMs: HEARTBEAT_MS, probeIntervalMs: 500, events, ...options, config });
  stores.push(store);
  store.start();
  return { store, events };
}

async function stopStores(): Promise<void> {
  await Promise.all(stores.splice(0).map((s) => s.stop()));
}

beforeAll(async () => {
  redis = await TestRedis.start();
});

afterEach(async () => {
  await stopStores();
  // Each test starts from a live, empty Redis whatever the previous one did to it.
  if (!redis.running) await redis.restart();
  await until('Redis to answer after the test', async () => (await redis.command('PING').catch(() => null)) === 'PONG', 5_000);
  await redis.command('FLUSHALL');
});

afterAll(async () => {
  await stopStores();
  await redis?.stop();
});

describe('RedisStore heartbeats', () => {
  it('comes up after start and counts itself as the one instance after its first heartbeat', async () => {
    const { store } = newStore('local');
    expect(store.up).toBe(false);
    await until('store up', () => store.up, RECOVERY_MS);
    await until('own heartbeat in Redis', async () => (await redis.command('ZSCORE', 'gw:_instances', store.instanceId)) !== null, RECOVERY_MS);
    expect(await redis.command('ZCARD', 'gw:_instances')).toBe(1);
    expect(store.instances).toBe(1);
    expect(store.ready).toBe(true);
  });

  it('three stores on one Redis each count 3 instances, and 2 once one of them stops', async () => {
    const three = [newStore('local'), newStore('local'), newStore('local')];
    await until('every store to see 3 instances', () => three.every(({ store }) => store.instances === 3), 5_000);
    for (const { events } of three) expect(events.instanceCounts.at(-1)).toBe(3);

    const [gone, ...rest] = three;
    await gone!.store.stop();
    // stop() removes the instance at once, so the others need one heartbeat, not the 30 s window.
    expect(await redis.command('ZSCORE', 'gw:_instances', gone!.store.instanceId)).toBeNull();
    await until('the other stores to see 2 instances', () => rest.every(({ store }) => store.instances === 2), 5_000);
    for (const { events } of rest) expect(events.instanceCounts.at(-1)).toBe(2);
  });
});

describe('RedisStore when Redis is killed', () => {
  it(`answers every decision of a steady stream within commandTimeout + ${SLACK_MS} ms across the kill, from the fallback after it`, async () => {
    const { store, events } = newStore('local');
    // Two more instances, so a fallback verdict (instances 3) is told apart from Redis' (instances 1).
    newStore('local');
    newStore('local');
    await until('3 instances seen', () => store.up && store.instances === 3, 5_000);

    const params = gcraParams({ limit: 1_000_000, windowMs: 1_000, burst: 1_000_000 });
    const key = freshKey();
    let killStartedAt = Number.POSITIVE_INFINITY;
    let killedAt = Number.POSITIVE_INFINITY;
    const killer = (async (): Promise<void> => {
      await sleep(700);
      killStartedAt = performance.now();
      await redis.kill();
      killedAt = performance.now();
    })();
    const results = await stream(store, params, key, 2_000, 2);
    await killer;

    const slow = results.filter((r) => r.ms > COMMAND_TIMEOUT_MS + SLACK_MS);
    expect(slow.map((r) => r.ms)).toEqual([]);

    const before = results.filter((r) => r.startedAt + r.ms < killStartedAt);
    const after = results.filter((r) => r.startedAt >= killedAt);
    expect(before.filter((r) => fromRedis(r.verdict)).length).toBeGreaterThan(0);
    expect(after.length).toBeGreaterThan(100);
    for (const r of after) expect(r.verdict).toMatchObject({ kind: 'decided', instances: 3 });
    expect(store.up).toBe(false);
    expect(events.states.at(-1)).toMatchObject({ up: false, failureMode: 'local' });
  });

  it('local: with 3 instances seen before the outage, one store allows 10 of 30 rapid decisions (limit 30, burst 30 → 10)', async () => {
    const trio = [newStore('local'), newStore('local'), newStore('local')];
    const { store } = trio[0]!;
    await until('3 instances seen', () => trio.every(({ store: s }) => s.up && s.instances === 3), 5_000);
    await redis.kill();

    const params = gcraParams({ limit: 30, windowMs: 60_000, burst: 30 });
    const key = freshKey();
    const verdicts: Verdict[] = [];
    for (let i = 0; i < 30; i++) verdicts.push(await store.decide([params], [key]));
    const allowed = verdicts.filter((v) => v.kind === 'decided' && v.states[0]!.allowed).length;
    expect(allowed).toBe(10);
    for (const v of verdicts) expect(v).toMatchObject({ kind: 'decided', instances: 3 });
  });

  it('open allows and closed refuses with store_error; only closed turns not ready; the down transition and its reason are reported', async () => {
    const local = newStore('local');
    const open = newStore('open');
    const closed = newStore('closed');
    const all = [local, open, closed];
    // All three heartbeat into one Redis: the local one divides by the 3 it saw before the outage.
    await until('all stores up, seeing 3 instances', () => all.every(({ store }) => store.up && store.instances === 3), RECOVERY_MS);
    for (const { store } of all) expect(store.ready).toBe(true);

    await redis.kill();
    const params = gcraParams({ limit: 100, windowMs: 1_000, burst: 100 });
    const key = freshKey();
    // The first decision may be the one that finds Redis gone; the later ones are told at once.
    for (let i = 0; i < 3; i++) {
      const [l, o, c] = await Promise.all(all.map(({ store }) => timed(store, params, key)));
      for (const t of [l!, o!, c!]) expect(t.ms).toBeLessThanOrEqual(COMMAND_TIMEOUT_MS + SLACK_MS);
      expect(l!.verdict).toMatchObject({ kind: 'decided', instances: 3 });
      expect(o!.verdict).toEqual({ kind: 'store_error', allow: true });
      expect(c!.verdict).toEqual({ kind: 'store_error', allow: false });
    }
    await until('every store to notice the outage', () => all.every(({ store }) => !store.up), RECOVERY_MS);
    expect(local.store.ready).toBe(true);
    expect(open.store.ready).toBe(true);
    expect(closed.store.ready).toBe(false);

    for (const [{ events }, mode] of [[local, 'local'], [open, 'open'], [closed, 'closed']] as const) {
      // start() reports the initial down state; then up; then the outage.
      expect(events.states.map((s) => s.up)).toEqual([false, true, false]);
      const down = events.states.at(-1)!;
      expect(down.failureMode).toBe(mode);
      expect(down.reason).toMatch(/\S/);
    }
  });

  it('regression: counts a call cut off by the connection dropping as a connection failure, not as an error Redis answered', async () => {
    // A long commandTimeout and a sleeping Redis keep the call in flight until the kill cuts it off.
    const { store, events } = newStore('open', {}, 5_000);
    await until('store up', () => store.up, RECOVERY_MS);
    redis.debugSleep(3);
    await sleep(50);
    const decision = store.decide([gcraParams({ limit: 10, windowMs: 1_000, burst: 10 })], [freshKey()]);
    await sleep(200);
    await redis.kill();
    expect(await decision).toEqual({ kind: 'store_error', allow: true });
    expect(events.errors.get('connection') ?? 0).toBeGreaterThanOrEqual(1);
    // events.ts: 'error' means "Redis answered an error"; this Redis answered nothing.
    expect(events.errors.get('error')).toBeUndefined();
  });

  it('regression: reports why it went down, not the reason left over from before it first connected', async () => {
    const { store, events } = newStore('open');
    await until('store up', () => store.up, RECOVERY_MS);
    await redis.kill();
    await until('store down', () => !store.up, RECOVERY_MS);
    const down = events.states.at(-1)!;
    expect(down.up).toBe(false);
    expect(down.reason).not.toContain('not connected yet');
  });

  it('uses Redis again within 5 s of its restart on the same port', async () => {
    const { store, events } = newStore('local');
    await until('store up', () => store.up, RECOVERY_MS);
    await redis.kill();
    await until('store down', () => !store.up, RECOVERY_MS);
    const params = gcraParams({ limit: 10, windowMs: 60_000, burst: 10 });
    const key = freshKey();
    // Spent in the fallback only: Redis must not see it.
    const local = await store.decide([params], [key]);
    expect(local).toMatchObject({ kind: 'decided', instances: 1 });

    await redis.restart();
    const restartedAt = performance.now();
    await until('store up again', () => store.up, RECOVERY_MS);
    const recoveryMs = performance.now() - restartedAt;
    expect(recoveryMs).toBeLessThanOrEqual(RECOVERY_MS);
    expect(events.states.at(-1)).toMatchObject({ up: true, reason: null });

    const rt = events.roundTrips;
    const verdict = await store.decide([params], [key]);
    expect(verdict).toMatchObject({ kind: 'decided', instances: 1 });
    expect(events.roundTrips).toBeGreaterThan(rt);
    // A fresh Redis: the key's state starts over (9 left of a burst of 10), and lives in Redis.
    expect(verdict.kind === 'decided' && verdict.states[0]!.remaining).toBe(9);
    expect(await redis.command('EXISTS', key)).toBe(1);
    const pttl = await redis.command('PTTL', key);
    expect(typeof pttl === 'number' && pttl > 0 && pttl <= 6_000).toBe(true);
  });
});

describe('RedisStore when Redis stalls', () => {
  async function expectStallHandled(stall: () => Promise<void>, stallMs: number, label: string): Promise<void> {
    const { store, events } = newStore('open');
    await until('store up', () => store.up, RECOVERY_MS);
    const params = gcraParams({ limit: 1_000_000, windowMs: 1_000, burst: 1_000_000 });
    const key = freshKey();
    expect(fromRedis(await store.decide([params], [key]))).toBe(true);

    const stallStartedAt = performance.now();
    await stall();
    // Decisions for most of the stall, stopping well before it ends so none is answered by Redis.
    const results = await stream(store, params, key, stallMs - 400, 10);
    const stallEndsAt = stallStartedAt + stallMs;
    for (const r of results) {
      expect(r.ms).toBeLessThanOrEqual(COMMAND_TIMEOUT_MS + SLACK_MS);
      expect(r.verdict).toEqual({ kind: 'store_error', allow: true });
    }
    expect(events.errors.get('timeout') ?? 0).toBeGreaterThanOrEqual(1);
    expect(events.states.at(-1)).toMatchObject({ up: false, failureMode: 'open' });
    expect(events.states.at(-1)?.reason).toContain('timeout');

    await until('store up after the stall', () => store.up, stallMs + RECOVERY_MS);
    const recoveryMs = performance.now() - stallEndsAt;
    expect(recoveryMs).toBeLessThanOrEqual(RECOVERY_MS);
    expect(fromRedis(await store.decide([params], [key]))).toBe(true);
  }

  it('CLIENT PAUSE: decisions during the pause come from the fallback within commandTimeout, and Redis is used again after it', async () => {
    await expectStallHandled(() => redis.pause(1_500), 1_500, 'CLIENT PAUSE 1500');
  });

  it('DEBUG SLEEP: decisions during the sleep come from the fallback within commandTimeout, and Redis is used again after it', async () => {
    await expectStallHandled(async () => {
      redis.debugSleep(1);
      // Fire-and-forget: let the command reach the server before counting on the stall.
      await sleep(50);
    }, 1_000, 'DEBUG SLEEP 1');
  });
});

describe('RedisStore when Redis is down at start', () => {
  it('decides from the fallback at once and comes up once Redis starts', async () => {
    await redis.kill();
    const { store, events } = newStore('local');
    const params = gcraParams({ limit: 2, windowMs: 60_000, burst: 2 });
    const key = freshKey();

    const started = performance.now();
    const first = store.decide([params], [key]);
    // Synchronous: not even one loop turn is spent on a Redis known to be away.
    expect(first).not.toBeInstanceOf(Promise);
    expect(first).toMatchObject({ kind: 'decided', instances: 1, states: [{ allowed: true }] });
    const verdicts = [first, store.decide([params], [key]), store.decide([params], [key])];
    expect(performance.now() - started).toBeLessThan(SLACK_MS);
    // N is 1 before any heartbeat was seen: the full limit applies locally.
    expect(verdicts.map((v) => !(v instanceof Promise) && v.kind === 'decided' && v.states[0]!.allowed)).toEqual([true, true, false]);
    expect(store.up).toBe(false);
    expect(store.ready).toBe(true);

    // Longer than the reconnect back-off's cap, so the store must really keep trying.
    await sleep(1_500);
    await redis.restart();
    await until('store up once Redis started', () => store.up, RECOVERY_MS);
    expect(events.states.map((s) => s.up)).toEqual([false, true]);
    const fromRedisNow = await store.decide([params], [key]);
    expect(fromRedisNow).toMatchObject({ kind: 'decided', instances: 1, states: [{ allowed: true, remaining: 1 }] });
    expect(await redis.command('EXISTS', key)).toBe(1);
  });

  it('closed: not ready and refusing while Redis has never been reached', async () => {
    await redis.kill();
    const { store } = newStore('closed');
    const params = gcraParams({ limit: 2, windowMs: 60_000, burst: 2 });
    expect(store.decide([params], [freshKey()])).toEqual({ kind: 'store_error', allow: false });
    expect(store.ready).toBe(false);
    await redis.restart();
    await until('store up once Redis started', () => store.up, RECOVERY_MS);
    expect(store.ready).toBe(true);
  });
});
