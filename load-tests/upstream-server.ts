// The upstreams every target proxies to: one process, one plain node:http server per port given
// on the command line, each answering any request with the same 100-byte body. They run in their
// own process (pinned beside the load generator) so the proxy under test has its CPU to itself.
//
//   node dist/load-tests/upstream-server.js 41001 41002 41003
import { createServer, type Server } from 'node:http';

// Keep in step with UPSTREAM_BODY_BYTES in harness/processes.ts (this file has side effects, so
// it is not imported from there).
const UPSTREAM_BODY = Buffer.from(`${'x'.repeat(99)}\n`);

const ports = process.argv.slice(2).map(Number);
if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p <= 0 || p > 65535)) {
  process.stderr.write('usage: upstream-server PORT [PORT...]\n');
  process.exit(2);
}

const headers = {
  'content-type': 'text/plain',
  'content-length': String(UPSTREAM_BODY.length),
};

const servers: Server[] = ports.map((port) => {
  const server = createServer((req, res) => {
    // Drain any request body so the connection stays reusable; benchmarks send none.
    req.resume();
    res.writeHead(200, headers);
    res.end(UPSTREAM_BODY);
  });
  // Longer than a whole measurement: a proxy's pooled connections are never closed under it,
  // which would show up as resets and reconnects that belong to neither target.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  server.listen(port, '127.0.0.1');
  return server;
});

const stop = (): void => {
  for (const s of servers) s.closeAllConnections();
  let open = servers.length;
  for (const s of servers) s.close(() => (--open === 0 ? process.exit(0) : undefined));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
