import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The gateway's logger writes stdout asynchronously (a slow log reader must not stall requests);
// what is still buffered when the process exits must not be lost.
const LOGGING = fileURLToPath(new URL('../dist/src/logging.js', import.meta.url));

describe('createLogger', () => {
  it('writes every line, even those still buffered when the process exits at once', () => {
    const script = `
      const { createLogger } = await import(${JSON.stringify(LOGGING)});
      const log = createLogger('info', { pid: process.pid });
      for (let i = 0; i < 5000; i++) log.info({ event: 'n', i }, 'line');
      process.exit(0);
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    expect(child.status).toBe(0);
    const lines = child.stdout.trim().split('\n').map((l) => JSON.parse(l) as { i: number; event: string });
    expect(lines).toHaveLength(5000);
    expect(lines.at(-1)).toMatchObject({ event: 'n', i: 4999 });
  });
});
