import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface WorkersReport {
  settings: { smoke: boolean };
  measurements: { target: string; problems: string[]; processCpuPercent: { pid: number; cpuPercent: number | null }[] }[];
}

// Keeps `npm run bench:workers` from rotting: one short round of each target must run cleanly (the
// scenario itself fails a gateway-2 without a primary and two workers that each took load) and
// print its tables, the ratio and what limited it. Nothing about speed is asserted.
describe('npm run bench:workers --smoke', () => {
  it('measures workers: 1 and workers: 2, prints the CPU split, the ratio and what limited it', async () => {
    let stdout: string;
    try {
      ({ stdout } = await promisify(execFile)('npm', ['run', '--silent', 'bench:workers', '--', '--smoke'], { cwd: ROOT, timeout: 120_000 }));
    } catch (err) {
      const e = err as Error & { stdout?: string; stderr?: string };
      throw new Error(`${e.message}\nstdout:\n${e.stdout ?? ''}\nstderr:\n${e.stderr ?? ''}`);
    }
    for (const t of ['gateway-1', 'gateway-2']) expect(stdout).toMatch(new RegExp(`^\\| ${t} \\| 1 \\| .* \\| 0 / 0 \\|`, 'm'));
    expect(stdout).toMatch(/^\| gateway-2 \| [0-9 ]+ \(.*\) \| [0-9 ]+ \| primary [0-9 ]+ %, workers [0-9 ]+ % \+ [0-9 ]+ % \|/m);
    expect(stdout).toMatch(/^gateway-2 \/ gateway-1: req\/s [0-9.]+×/m);
    expect(stdout).toMatch(/^what limited it:\n {2}gateway-1: .+\n {2}gateway-2: .+\n {2}ceiling: /m);
    expect(stdout).not.toMatch(/^FAILED/m);

    const file = /^all rounds: (.+)$/m.exec(stdout)?.[1];
    const report = JSON.parse(await readFile(file!, 'utf8')) as WorkersReport;
    expect(report.settings.smoke).toBe(true);
    const two = report.measurements.find((m) => m.target === 'gateway-2');
    expect(two?.processCpuPercent).toHaveLength(3);
    for (const worker of two?.processCpuPercent.slice(1) ?? []) expect(worker.cpuPercent).toBeGreaterThan(0);
  }, 150_000);
});
