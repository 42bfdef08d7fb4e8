import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const RATELIMIT = fileURLToPath(new URL('../../dist/load-tests/ratelimit.js', import.meta.url));
const STORE = fileURLToPath(new URL('../../dist/load-tests/ratelimit-store.js', import.meta.url));
const TARGETS = ['gateway-nolimit', 'gateway-redis', 'gateway-local'];

interface RateLimitReport {
  settings: { smoke: boolean };
  rateLimitMeasurements: {
    target: string;
    decisions: { allowed: number; limited: number; storeError: number } | null;
    storeUp: number | null;
    scriptCalls: number | null;
    redisScriptCalls: number | null;
    roundTripsPerRequest: number | null;
    problems: string[];
  }[];
  measurements: { target: string; problems: string[]; load: { completed: number; errors: number; non2xx: number; statusCodes: Record<string, number> } | null }[];
  roundProblems: string[];
}

interface StoreReport {
  settings: { smoke: boolean };
  measurements: { combination: string; maxBatch: number; decisions: number; scriptCalls: number; decisionsPerCall: number; problems: string[] }[];
  roundProblems: string[];
}

async function run(script: string): Promise<string> {
  try {
    return (await promisify(execFile)(process.execPath, [script, '--smoke'], { timeout: 120_000 })).stdout;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${e.message}\nstdout:\n${e.stdout ?? ''}\nstderr:\n${e.stderr ?? ''}`);
  }
}

async function reportOf<T>(stdout: string): Promise<T> {
  const file = /^all rounds: (.+)$/m.exec(stdout)?.[1];
  expect(file).toBeDefined();
  return JSON.parse(await readFile(file!, 'utf8')) as T;
}

// Keeps the rate-limit scenarios from rotting: one short round of each must complete with every
// response a 200, every decision of the Redis route made in Redis, and print its tables. Nothing
// about speed is asserted (tests never fail because a machine is slow); at most one script call
// per decision is asserted because the store cannot do otherwise, however slow the machine.
describe('npm run bench:ratelimit --smoke', () => {
  it('runs the unlimited, Redis and in-process targets, decides through Redis, and prints the ratios and round trips', async () => {
    const stdout = await run(RATELIMIT);
    for (const t of TARGETS) expect(stdout).toMatch(new RegExp(`^\\| ${t} \\| 1 \\| .* \\| 0 / 0 \\|`, 'm'));
    for (const t of TARGETS.slice(1)) expect(stdout).toMatch(new RegExp(`^${t} / gateway-nolimit: req/s [0-9.]+×`, 'm'));
    expect(stdout).toMatch(/^Redis round trips per request \(gateway-redis, .*\): [0-9.]+ .*: met$/m);
    expect(stdout).toMatch(/^targets \(req\/s × gateway-nolimit/m);
    expect(stdout).not.toMatch(/^FAILED/m);

    const report = await reportOf<RateLimitReport>(stdout);
    expect(report.settings.smoke).toBe(true);
    expect(report.roundProblems).toEqual([]);
    expect(report.measurements.map((m) => m.target).sort()).toEqual([...TARGETS].sort());
    for (const m of report.measurements) {
      expect(m.problems).toEqual([]);
      expect(m.load?.completed).toBeGreaterThan(0);
      expect(Object.keys(m.load?.statusCodes ?? {})).toEqual(['200']);
    }
    const byTarget = new Map(report.rateLimitMeasurements.map((r) => [r.target, r]));
    expect(byTarget.get('gateway-nolimit')?.decisions).toEqual({ allowed: 0, limited: 0, storeError: 0 });
    const local = byTarget.get('gateway-local');
    expect(local?.decisions?.allowed).toBeGreaterThan(0);
    expect(local?.storeUp).toBeNull();
    const redis = byTarget.get('gateway-redis');
    expect(redis?.problems).toEqual([]);
    expect(redis?.storeUp).toBe(1);
    expect(redis?.decisions).toMatchObject({ limited: 0, storeError: 0 });
    expect(redis?.scriptCalls).toBeGreaterThan(0);
    expect(redis?.redisScriptCalls).toBeGreaterThanOrEqual(redis?.scriptCalls ?? Number.POSITIVE_INFINITY);
    expect(redis?.roundTripsPerRequest).toBeGreaterThan(0);
    expect(redis?.roundTripsPerRequest).toBeLessThanOrEqual(1);
  }, 150_000);
});

describe('npm run bench:ratelimit-store --smoke', () => {
  it('measures the four auto-pipelining × batching combinations and says which to keep', async () => {
    const stdout = await run(STORE);
    for (const [pipelining, batch] of [['off', 128], ['on', 128], ['off', 1], ['on', 1]] as const) {
      expect(stdout).toMatch(new RegExp(`^\\| ${pipelining} \\| ${batch} \\| 1 \\| [0-9 ]+ \\| [0-9 ]+ \\|`, 'm'));
    }
    expect(stdout).toMatch(/^keep: autoPipelining (on|off)/m);
    expect(stdout).not.toMatch(/^FAILED/m);

    const report = await reportOf<StoreReport>(stdout);
    expect(report.settings.smoke).toBe(true);
    expect(report.roundProblems).toEqual([]);
    expect(report.measurements).toHaveLength(4);
    for (const m of report.measurements) {
      expect(m.problems).toEqual([]);
      expect(m.decisions).toBeGreaterThan(0);
      // Without the store's batching each decision is one call; with it, the callers share calls.
      if (m.maxBatch === 1) expect(m.scriptCalls).toBe(m.decisions);
      else expect(m.decisionsPerCall).toBeGreaterThan(1);
    }
  }, 150_000);
});
