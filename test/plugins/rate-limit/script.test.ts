import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RedisConfig } from '../../../src/config/types.js';
import { GatewayError } from '../../../src/errors.js';
import type { FilterContext } from '../../../src/filters/filter.js';
import { type RateLimitEvents, SILENT_RATE_LIMIT_EVENTS } from '../../../plugins/rate-limit/events.js';
import { createRateLimitFilter } from '../../../plugins/rate-limit/filter.js';
import { type GcraParams, gcraParams, type PolicyState } from '../../../plugins/rate-limit/gcra.js';
import { LocalStore } from '../../../plugins/rate-limit/local-store.js';
import { RedisStore } from '../../../plugins/rate-limit/redis-store.js';
import { RATE_LIMIT_SCRIPT } from '../../../plugins/rate-limit/script.js';
import type { Verdict } from '../../../plugins/rate-limit/store.js';
import { TestRedis } from '../../helpers/redis.js';
import { sleep, until } from '../../helpers/wait.js';

// The Lua script against a real redis-server, held to the reference arithmetic (LocalStore on a
// frozen clock): first called directly through ioredis, then through RedisStore as the gateway
// uses it. Windows are short where real time must pass, long where it must not matter.

// Redis' TIME is the wall clock and Node's timers are monotonic: a sleep meant to outlast a Redis
// deadline gets a few milliseconds more, so the two clocks' rounding cannot decide a test.
const CLOCK_SLACK_MS = 5;
const T0 = 1_700_000_000_000_000;

const params = (limit: number, windowMs: number, burst = limit): GcraParams => gcraParams({ limit, windowMs, burst });

interface ScriptRequest {
  readonly keys: readonly string[];
  readonly params: readonly GcraParams[];
}

const req = (...pairs: [string, GcraParams][]): ScriptRequest => ({ keys: pairs.map(([k]) => k), params: pairs.map(([, p]) => p) });
const times = (n: number, request: ScriptRequest): ScriptRequest[] => Array.from({ length: n }, () => request);

/** The script's arguments, laid out as RedisStore lays them out. */
function scriptArgs(requests: readonly ScriptRequest[]): (string | number)[] {
  const keys = requests.flatMap((r) => r.keys);
  const args: (string | number)[] = [keys.length, ...keys, requests.length];
  for (const r of requests) args.push(r.params.map((p) => p.spec).join(' '));
  return args;
}

function parseReply(reply: unknown, requests: readonly ScriptRequest[]): PolicyState[][] {
  if (!Array.isArray(reply) || !reply.every((v): v is number => typeof v === 'number')) throw new Error(`unexpected reply ${JSON.stringify(reply)}`);
  const values: number[] = reply;
  const expected = requests.reduce((n, r) => n + r.keys.length, 0) * 4;
  if (values.length !== expected) throw new Error(`expected ${expected} values, got ${values.length}`);
  let at = 0;
  return requests.map((r) =>
    r.keys.map(() => {
      const [allowed, remaining, retryAfterMs, resetMs] = values.slice(at, (at += 4));
      return { allowed: allowed === 1, remaining: remaining ?? -1, retryAfterMs: retryAfterMs ?? -1, resetMs: resetMs ?? -1 };
    }),
  );
}

function decided(verdict: Verdict): readonly PolicyState[] {
  if (verdict.kind !== 'decided') throw new Error(`expected a decided verdict, got ${JSON.stringify(verdict)}`);
  expect(verdict.instances).toBe(1);
  return verdict.states;
}

/** What the reference says for the same requests arriving at one instant. */
function reference(requests: readonly ScriptRequest[], store = new LocalStore({ clock: () => T0 })): PolicyState[][] {
  return requests.map((r) => [...decided(store.decide(r.params, r.keys))]);
}

const verdictOf = (states: readonly PolicyState[]): [boolean, number][] => states.map((s) => [s.allowed, s.remaining]);

function keysReply(reply: unknown): string[] {
  if (!Array.isArray(reply) || !reply.every((k): k is string => typeof k === 'string')) throw new Error(`unexpected KEYS reply ${JSON.stringify(reply)}`);
  return reply;
}

let redis: TestRedis;

beforeAll(async () => {
  redis = await TestRedis.start();
});

afterAll(async () => {
  await redis?.stop();
});

type ScriptClient = Redis & { rl(...args: (string | number)[]): Promise<unknown> };

describe('the script, called directly', () => {
  let client: ScriptClient;

  beforeAll(() => {
    client = new Redis(redis.url) as ScriptClient;
    client.on('error', () => undefined);
    client.defineCommand('rl', { lua: RATE_LIMIT_SCRIPT });
  });

  afterAll(async () => {
    await client?.quit();
  });

  beforeEach(async () => {
    await client.flushall();
  });

  const run = async (requests: readonly ScriptRequest[]): Promise<PolicyState[][]> => parseReply(await client.rl(...scriptArgs(requests)), requests);
  const runOne = async (request: ScriptRequest): Promise<readonly PolicyState[]> => {
    const [states] = await run([request]);
    if (states === undefined) throw new Error('no answer');
    return states;
  };

  it('one call of many requests answers exactly what the reference answers, field for field', async () => {
    // Within one call Redis' clock stands still, as the reference's does: every field must match.
    const p1 = params(5, 60_000);
    const p2 = params(10, 1_000, 3);
    const p3 = params(3, 1_000); // a period that is not whole milliseconds
    const batch = [
      ...times(3, req(['a', p1])),
      ...times(4, req(['a', p1], ['b', p2])),
      ...times(5, req(['c', p3])),
      ...times(2, req(['b', p2], ['c', p3])),
      ...times(2, req(['d', p1], ['a', p1], ['c', p3])),
    ];
    const answers = await run(batch);
    expect(answers).toEqual(reference(batch));
    // And the reference's story, told plainly: a's burst of 5 runs out on the 6th request.
    expect(answers.slice(0, 7).map((states) => states[0]?.allowed)).toEqual([true, true, true, true, true, false, false]);
  });

  it('requests fired back to back, one call each: allowed and remaining equal the reference, burst B at once then refused', async () => {
    // Windows of a minute: the milliseconds between calls recover nothing.
    for (const [limit, burst] of [[5, 5], [10, 3], [100, 20], [1, 1]] as const) {
      const key = `seq-${limit}-${burst}`;
      const p = params(limit, 60_000, burst);
      const sequence = times(burst + 5, req([key, p]));
      const answers: [boolean, number][][] = [];
      for (const request of sequence) answers.push(verdictOf(await runOne(request)));
      expect(answers, `limit ${limit} burst ${burst}`).toEqual(reference(sequence).map(verdictOf));
      const allowed = answers.map(([policy]) => policy?.[0]);
      expect(allowed).toEqual([...Array<boolean>(burst).fill(true), ...Array<boolean>(5).fill(false)]);
    }
  });

  it('retryAfterMs is enough: waiting it out lets the next request through', async () => {
    const p = params(5, 1_000); // period 200 ms
    const answers = await run(times(6, req(['wait', p])));
    const refused = answers[5]?.[0];
    expect(refused).toEqual({ allowed: false, remaining: 0, retryAfterMs: 200, resetMs: 1_000 });
    await sleep((refused?.retryAfterMs ?? 0) + CLOCK_SLACK_MS);
    expect((await runOne(req(['wait', p])))[0]).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('every written key has a TTL no longer than until its full burst is back, and none outlives it', async () => {
    const specs: [string, GcraParams, number][] = [
      ['ttl-a', params(5, 1_000), 7], // one refused on top of the burst: writes nothing
      ['ttl-b', params(4, 600, 2), 2],
      ['ttl-c', params(3, 1_000), 1],
      ['ttl-d', params(100, 60_000), 1], // a minute's window, yet gone when its one spent request is back
    ];
    const lastReset = new Map<string, number>();
    for (const [key, p, n] of specs) {
      const answers = await run(times(n, req([key, p])));
      lastReset.set(key, answers.at(-1)?.[0]?.resetMs ?? -1);
    }
    expect(Object.fromEntries(lastReset)).toEqual({ 'ttl-a': 1_000, 'ttl-b': 300, 'ttl-c': 334, 'ttl-d': 600 });
    const held = keysReply(await client.keys('*')).sort();
    expect(held).toEqual(['ttl-a', 'ttl-b', 'ttl-c', 'ttl-d']);
    for (const key of held) {
      const pttl = await client.pttl(key);
      expect(pttl, key).toBeGreaterThan(0);
      expect(pttl, key).toBeLessThanOrEqual(lastReset.get(key) ?? 0);
    }
    await sleep(Math.max(...lastReset.values()) + CLOCK_SLACK_MS);
    // EXISTS expires a key on access: zero means expired, not merely not yet reclaimed.
    for (const key of held) expect(await client.exists(key), key).toBe(0);
    await until('DBSIZE to reach 0', async () => (await redis.command('DBSIZE')) === 0, 10_000);
    expect(await redis.command('DBSIZE')).toBe(0);
  });

  it('a key is never written without a TTL, however its TAT moves', async () => {
    const p = params(20, 2_000, 5); // period 100 ms
    let admitted = 0;
    let writtenReset = 0;
    for (let i = 0; i < 30; i++) {
      const [state] = await runOne(req(['moving', p]));
      // A refusal writes nothing, so the bound is what the last admitted request was told: the TTL
      // set then, only running down since. (A refusal's own resetMs is measured later and may be
      // a millisecond under the TTL, which Redis rounds up to whole milliseconds.)
      if (state?.allowed === true) {
        admitted++;
        writtenReset = state.resetMs;
      }
      const pttl = await client.pttl('moving');
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(writtenReset);
      // Some time passes, so TAT moves both by admissions and by recovery.
      if (i % 3 === 2) await sleep(60);
    }
    expect(admitted).toBeGreaterThan(5);
  });

  it('in a batch, requests on the same key are decided in order, each seeing the writes before it', async () => {
    const two = params(2, 60_000);
    const spend = await run(times(3, req(['same', two])));
    expect(spend.map(verdictOf)).toEqual([[[true, 1]], [[true, 0]], [[false, 0]]]);

    const wide = params(3, 60_000);
    const single = params(1, 60_000, 1);
    const mixed = [req(['k2', wide], ['k3', single]), req(['k2', wide]), req(['k3', single]), req(['k2', wide])];
    const answers = await run(mixed);
    expect(answers.map(verdictOf)).toEqual([
      [[true, 2], [true, 0]],
      [[true, 1]],
      [[false, 0]], // k3 was spent by the first request of this same call
      [[true, 0]],
    ]);
    expect(answers).toEqual(reference(mixed));
  });

  it('all or nothing inside Redis: a request refused by one policy leaves the other key untouched', async () => {
    const a = params(10, 60_000);
    const b = params(1, 60_000, 1);
    const both = req(['aon-a', a], ['aon-b', b]);
    expect(verdictOf(await runOne(both))).toEqual([[true, 9], [true, 0]]);
    const before = [await client.get('aon-a'), await client.get('aon-b')];
    const pttlBefore = await client.pttl('aon-a');
    expect(before.every((v) => v !== null && /^\d+$/.test(v))).toBe(true);
    for (let i = 0; i < 3; i++) expect(verdictOf(await runOne(both))).toEqual([[true, 9], [false, 0]]);
    expect([await client.get('aon-a'), await client.get('aon-b')]).toEqual(before);
    // Not rewritten either: the TTL only ran down.
    expect(await client.pttl('aon-a')).toBeLessThanOrEqual(pttlBefore);
    expect(verdictOf(await runOne(req(['aon-a', a])))).toEqual([[true, 8]]);
  });

  it('a refused request in the middle of a batch spends nothing for the requests after it', async () => {
    const a = params(10, 60_000);
    const b = params(1, 60_000, 1);
    const batch = [req(['m-a', a], ['m-b', b]), req(['m-a', a], ['m-b', b]), req(['m-a', a])];
    const answers = await run(batch);
    expect(answers.map(verdictOf)).toEqual([[[true, 9], [true, 0]], [[true, 9], [false, 0]], [[true, 8]]]);
    expect(answers).toEqual(reference(batch));
  });

  it('TAT values are stored as exact integers of microseconds', async () => {
    await runOne(req(['int', params(1, 1_000, 1)]));
    const value = await client.get('int');
    expect(value).toMatch(/^\d{16,}$/);
    // The Redis clock in microseconds, a second ahead: the stored TAT is within a few seconds of it.
    const [seconds, micros] = await client.time();
    const nowUs = Number(seconds) * 1_000_000 + Number(micros);
    expect(Math.abs(Number(value) - (nowUs + 1_000_000))).toBeLessThan(10_000_000);
  });
});

describe('through RedisStore', () => {
  const config: RedisConfig = { url: '', cluster: null, keyPrefix: 'gw:', commandTimeoutMs: 200, failureMode: 'local' };
  const failures: string[] = [];
  const events: RateLimitEvents = {
    ...SILENT_RATE_LIMIT_EVENTS,
    storeError: (reason, detail) => failures.push(`${reason}: ${detail}`),
  };
  let store: RedisStore;

  beforeAll(async () => {
    // Only what the store writes from here on, so every key Redis holds is the gateway's.
    await redis.command('FLUSHALL');
    store = new RedisStore({ config: { ...config, url: redis.url }, events });
    store.start();
    await until('the store to be up', () => store.up, 20_000);
  });

  afterAll(async () => {
    await store?.stop();
  });

  /** A store that fell back to local limiting would make every answer below prove nothing about Redis. */
  function expectStillOnRedis(): void {
    expect(failures).toEqual([]);
    expect(store.up).toBe(true);
    expect(store.fallbackKeys).toBe(0);
  }

  const decide = async (request: ScriptRequest): Promise<readonly PolicyState[]> => decided(await store.decide(request.params, request.keys));

  it('requests fired back to back: allowed and remaining equal the reference', async () => {
    for (const [limit, burst] of [[5, 5], [10, 3], [1, 1]] as const) {
      const key = `gw:store-seq:{${limit}-${burst}}`;
      const sequence = times(burst + 4, req([key, params(limit, 60_000, burst)]));
      const answers: [boolean, number][][] = [];
      for (const request of sequence) answers.push(verdictOf(await decide(request)));
      expect(answers, `limit ${limit} burst ${burst}`).toEqual(reference(sequence).map(verdictOf));
    }
    expectStillOnRedis();
  });

  it('retryAfterMs is enough: waiting it out lets the next request through', async () => {
    const request = req(['gw:store-wait:{x}', params(5, 1_000)]);
    // Asked in one turn, so one batch: the six share one instant of Redis' clock.
    const answers = await Promise.all(times(6, request).map(decide));
    const refused = answers.filter((states) => states[0]?.allowed === false);
    expect(refused).toHaveLength(1);
    const wait = refused[0]?.[0]?.retryAfterMs ?? 0;
    expect(wait).toBe(200);
    await sleep(wait + CLOCK_SLACK_MS);
    expect((await decide(request))[0]?.allowed).toBe(true);
    expectStillOnRedis();
  });

  it('200 concurrent decisions on one key with limit 50: exactly 50 allowed, in far fewer script calls', async () => {
    const scriptCalls = async (): Promise<number> => {
      const info = String(await redis.command('INFO', 'commandstats'));
      let calls = 0;
      for (const name of ['evalsha', 'eval']) calls += Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
      return calls;
    };
    const request = req(['gw:per-user:{concurrent}', params(50, 60_000, 50)]);
    const before = await scriptCalls();
    const answers = await Promise.all(Array.from({ length: 200 }, () => decide(request)));
    const calls = (await scriptCalls()) - before;
    const allowed = answers.filter((states) => states[0]?.allowed === true);
    expect(allowed).toHaveLength(50);
    // Each admitted request saw its predecessors: 49 down to 0, each exactly once.
    expect(allowed.map((states) => states[0]?.remaining ?? -1).sort((x, y) => y - x)).toEqual(Array.from({ length: 50 }, (_, i) => 49 - i));
    expect(calls).toBeGreaterThanOrEqual(1);
    // 200 requests of one turn go out in batches of up to 128; a heartbeat may add a call or two.
    expect(calls).toBeLessThanOrEqual(10);
    expectStillOnRedis();
  });

  it('through the filter: Redis holds keys named by prefix, policy and value, each with a TTL', async () => {
    const filter = createRateLimitFilter(
      [
        { name: 'per-ip', key: [{ kind: 'ip' }], limit: 2, windowMs: 60_000, burst: 2 },
        // A period of 36 s, so no slot comes back while the test runs, however slowly.
        { name: 'per-route', key: [{ kind: 'route' }], limit: 100, windowMs: 3_600_000, burst: 100 },
      ],
      store,
      'gw:',
      SILENT_RATE_LIMIT_EVENTS,
    );
    const context = (): FilterContext => {
      const message = new IncomingMessage(new Socket());
      message.headers = {};
      return { req: message, requestId: 'r', clientIp: '10.9.8.7', routeName: 'orders', upstreamHeaders: {}, responseHeaders: {}, attributes: new Map(), claims: null };
    };
    const results: (GatewayError | null)[] = [];
    const contexts = [context(), context(), context()];
    for (const c of contexts) results.push(await filter.apply(c));
    expect(results.slice(0, 2)).toEqual([null, null]);
    expect(results[2]).toBeInstanceOf(GatewayError);
    expect(results[2]).toMatchObject({ status: 429, code: 'GW_ERR_RATELIMIT_LIMITED' });
    expect(contexts[1]?.responseHeaders).toMatchObject({ 'ratelimit-limit': '2', 'ratelimit-remaining': '0', 'ratelimit-reset': '60' });
    expect(contexts[2]?.responseHeaders['retry-after']).toBe('30');

    const held = keysReply(await redis.command('KEYS', '*'));
    expect(held).toEqual(expect.arrayContaining(['gw:per-ip:{10.9.8.7}', 'gw:per-route:{orders}']));
    for (const key of held) expect(key.startsWith('gw:'), key).toBe(true);
    // Bounded by what each was told on the last admitted request: two periods spent.
    for (const [key, bound] of [['gw:per-ip:{10.9.8.7}', 60_000], ['gw:per-route:{orders}', 72_000]] as const) {
      const pttl = await redis.command('PTTL', key);
      expect(typeof pttl === 'number' && pttl > 0 && pttl <= bound, `${key}: PTTL ${String(pttl)}`).toBe(true);
    }
    // The refused third request spent nothing from per-route: two spent, and this one makes 97.
    expect((await decide(req(['gw:per-route:{orders}', params(100, 3_600_000)])))[0]?.remaining).toBe(97);
    expectStillOnRedis();
  });
});
