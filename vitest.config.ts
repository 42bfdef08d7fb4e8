import { defineConfig } from 'vitest/config';

// CI asks for a JSON report as well, to print the "N passed, M failed" line.
const jsonReport = process.env.GATEWAY_TEST_JSON_REPORT;

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests bind real sockets and spawn processes: files run in separate forks,
    // tests within a file run in order.
    pool: 'forks',
    // The streaming test samples live memory with gc() while 50 MB pass through.
    execArgv: ['--expose-gc'],
    reporters: jsonReport ? ['default', ['json', { outputFile: jsonReport }]] : ['default'],
  },
});
