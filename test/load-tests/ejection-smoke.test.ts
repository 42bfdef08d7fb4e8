import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const EJECTION = fileURLToPath(new URL('../../dist/load-tests/ejection.js', import.meta.url));

interface EjectionReport {
  ejected: boolean;
  ejection: { reason: string; afterFailureMs: number } | null;
  clientErrors: number;
  clientErrorCodes: Record<string, number>;
  threshold: number;
  bound: number;
  boundHeld: boolean;
  errorsLaterThanSettle: number;
  failingEndpointServed: { ok: number; failed: number } | null;
  before: { ok: number } | null;
  after: { ok: number } | null;
  problems: string[];
}

// Keeps the ejection scenario from rotting: one short run (8 connections, 2 s healthy, then one of
// 4 endpoints answers 500 for 2 s) must see the endpoint ejected with the client-visible errors
// within consecutive5xx + connections. Nothing about speed is asserted.
describe('npm run bench:ejection --smoke', () => {
  it('ejects the failing endpoint and keeps the client-visible errors within the bound', async () => {
    let stdout: string;
    try {
      ({ stdout } = await promisify(execFile)(process.execPath, [EJECTION, '--smoke'], { timeout: 120_000 }));
    } catch (err) {
      const e = err as Error & { stdout?: string; stderr?: string };
      throw new Error(`${e.message}\nstdout:\n${e.stdout ?? ''}\nstderr:\n${e.stderr ?? ''}`);
    }
    expect(stdout).toMatch(/^ejected: yes, /m);
    expect(stdout).toMatch(/^bound: .*: held$/m);
    expect(stdout).toMatch(/^PASSED: /m);

    const file = /^json: (.+)$/m.exec(stdout)?.[1];
    expect(file).toBeDefined();
    const report = JSON.parse(await readFile(file!, 'utf8')) as EjectionReport;
    expect(report.problems).toEqual([]);
    expect(report.ejected).toBe(true);
    expect(report.ejection?.reason).toBe('consecutive_5xx');
    // The detector needs `threshold` 500s in a row, and with retries off each one reached a client;
    // beyond those, only requests already on their way (at most one per connection).
    expect(report.clientErrors).toBeGreaterThanOrEqual(report.threshold);
    expect(report.clientErrors).toBeLessThanOrEqual(report.bound);
    expect(report.boundHeld).toBe(true);
    expect(Object.keys(report.clientErrorCodes)).toEqual(['500']);
    // Every 500 the endpoint answered reached exactly one client (retries: { attempts: 0 }).
    expect(report.failingEndpointServed?.failed).toBe(report.clientErrors);
    expect(report.errorsLaterThanSettle).toBe(0);
    // Load was served on both sides of the failure.
    expect(report.before?.ok).toBeGreaterThan(0);
    expect(report.after?.ok).toBeGreaterThan(0);
  }, 150_000);
});
