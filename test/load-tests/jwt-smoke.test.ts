import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const JWT = fileURLToPath(new URL('../../dist/load-tests/jwt.js', import.meta.url));
const TARGETS = ['gateway-noauth', 'gateway-jwt-hot', 'gateway-jwt-10k', 'gateway-jwt-cold'];

interface JwtReport {
  settings: { smoke: boolean; rounds: number };
  summary: { target: string; rounds: number; errors: number; non2xx: number }[];
  tokenMeasurements: { target: string; verifications: Record<string, number> | null; problems: string[] }[];
  measurements: { target: string; problems: string[]; load: { completed: number; non2xx: number; errors: number; statusCodes: Record<string, number> } | null }[];
  roundProblems: string[];
}

// Keeps the JWT scenario from rotting: one short round of the four targets must complete with every
// response a 200 and the gateway counting only verified tokens on the JWT routes, and print the
// ratio table. Nothing about speed is asserted (tests never fail because a machine is slow).
describe('npm run bench:jwt --smoke', () => {
  it('runs the no-auth and JWT targets, every response 200, and prints the ratios', async () => {
    let stdout: string;
    try {
      ({ stdout } = await promisify(execFile)(process.execPath, [JWT, '--smoke'], { timeout: 120_000 }));
    } catch (err) {
      const e = err as Error & { stdout?: string; stderr?: string };
      throw new Error(`${e.message}\nstdout:\n${e.stdout ?? ''}\nstderr:\n${e.stderr ?? ''}`);
    }
    for (const t of TARGETS) expect(stdout).toMatch(new RegExp(`^\\| ${t} \\| 1 \\| .* \\| 0 / 0 \\|`, 'm'));
    for (const t of TARGETS.slice(1)) expect(stdout).toMatch(new RegExp(`^${t} / gateway-noauth: req/s [0-9.]+×`, 'm'));
    expect(stdout).toMatch(/^targets \(req\/s × gateway-noauth/m);
    expect(stdout).not.toMatch(/^FAILED/m);

    const file = /^all rounds: (.+)$/m.exec(stdout)?.[1];
    expect(file).toBeDefined();
    const report = JSON.parse(await readFile(file!, 'utf8')) as JwtReport;
    expect(report.settings.smoke).toBe(true);
    expect(report.roundProblems).toEqual([]);
    expect(report.measurements.map((m) => m.target).sort()).toEqual([...TARGETS].sort());
    for (const m of report.measurements) {
      expect(m.problems).toEqual([]);
      expect(m.load?.completed).toBeGreaterThan(0);
      expect(m.load?.errors).toBe(0);
      expect(m.load?.non2xx).toBe(0);
      expect(Object.keys(m.load?.statusCodes ?? {})).toEqual(['200']);
    }
    // The JWT routes really verified the tokens (and only ever accepted them); the baseline did not.
    for (const t of report.tokenMeasurements) {
      expect(t.problems).toEqual([]);
      if (t.target === 'gateway-noauth') expect(t.verifications).toEqual({});
      else expect(Object.keys(t.verifications ?? {})).toEqual(['ok']);
    }
  }, 150_000);
});
