import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const CORE = fileURLToPath(new URL('../../dist/load-tests/core.js', import.meta.url));

// Keeps the benchmark harness from rotting: one short round must complete cleanly and print the
// ratio table. It asserts nothing about speed (tests never fail because a machine is slow).
describe('npm run bench --smoke', () => {
  it('runs one round against bare and the gateway and prints the ratios', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [CORE, '--smoke'], { timeout: 120_000 });
    expect(stdout).toMatch(/\| gateway \| 1 \|/);
    expect(stdout).toMatch(/gateway \/ bare: req\/s [0-9.]+×/);
  }, 150_000);
});
