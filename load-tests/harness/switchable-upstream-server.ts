// Upstreams that can be told to break mid-run: like load-tests/upstream-server.ts (one plain
// node:http server per port, each answering any request 200 with the same 100-byte body), plus a
// control path on every server, which the load generator never requests:
//
//   POST /__control/fail     this server answers 500 to every request from now on
//   POST /__control/refuse   this server stops listening and drops its connections (after answering)
//   GET  /__control/stats    requests served so far by every server, by status
//
// Control answers are JSON `{ at, servers }`, `at` the wall-clock time (ms, sub-ms precision) at
// which the switch took effect. Kept apart from upstream-server.ts so `npm run bench` runs
// byte-for-byte the same upstreams as before.
//
//   node dist/load-tests/harness/switchable-upstream-server.js 41001 41002 41003 41004
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

/** The prefix of the control paths. */
export const CONTROL_PREFIX = '/__control/';

export interface ServerStats {
  readonly port: number;
  readonly mode: 'ok' | 'fail' | 'refuse';
  readonly ok: number;
  readonly failed: number;
}

export interface ControlAnswer {
  /** Wall-clock ms (performance.timeOrigin + performance.now()) when the switch took effect. */
  readonly at: number;
  readonly servers: readonly ServerStats[];
}

// Same bytes as upstream-server.ts (UPSTREAM_BODY_BYTES = 100).
const BODY = Buffer.from(`${'x'.repeat(99)}\n`);
const FAIL_BODY = Buffer.from('upstream failing on purpose\n');
const OK_HEADERS = { 'content-type': 'text/plain', 'content-length': String(BODY.length) };
const FAIL_HEADERS = { 'content-type': 'text/plain', 'content-length': String(FAIL_BODY.length) };

interface Upstream {
  readonly port: number;
  readonly server: Server;
  mode: 'ok' | 'fail' | 'refuse';
  ok: number;
  failed: number;
}

const wallNow = (): number => performance.timeOrigin + performance.now();

function main(): void {
  const ports = process.argv.slice(2).map(Number);
  if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p <= 0 || p > 65535)) {
    process.stderr.write('usage: switchable-upstream-server PORT [PORT...]\n');
    process.exit(2);
  }

  const upstreams: Upstream[] = [];
  const stats = (): ServerStats[] => upstreams.map((u) => ({ port: u.port, mode: u.mode, ok: u.ok, failed: u.failed }));
  const answer = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), connection: 'close' });
    res.end(text);
  };

  const control = (u: Upstream, req: IncomingMessage, res: ServerResponse): void => {
    const what = (req.url ?? '').slice(CONTROL_PREFIX.length);
    if (req.method === 'GET' && what === 'stats') {
      answer(res, 200, { at: wallNow(), servers: stats() } satisfies ControlAnswer);
    } else if (req.method === 'POST' && what === 'fail') {
      u.mode = 'fail';
      answer(res, 200, { at: wallNow(), servers: stats() } satisfies ControlAnswer);
    } else if (req.method === 'POST' && what === 'refuse') {
      u.mode = 'refuse';
      const at = wallNow();
      // Stop accepting at once; drop the proxy's pooled connections once this answer is out.
      u.server.close();
      res.once('finish', () => u.server.closeAllConnections());
      answer(res, 200, { at, servers: stats() } satisfies ControlAnswer);
    } else {
      answer(res, 404, { error: `unknown control ${req.method ?? '?'} ${req.url ?? ''}` });
    }
  };

  for (const port of ports) {
    const server = createServer((req, res) => {
      req.resume();
      if (req.url?.startsWith(CONTROL_PREFIX) === true) {
        control(u, req, res);
        return;
      }
      if (u.mode === 'ok') {
        u.ok++;
        res.writeHead(200, OK_HEADERS);
        res.end(BODY);
      } else {
        u.failed++;
        res.writeHead(500, FAIL_HEADERS);
        res.end(FAIL_BODY);
      }
    });
    const u: Upstream = { port, server, mode: 'ok', ok: 0, failed: 0 };
    // As upstream-server.ts: never close a proxy's pooled connection under it mid-run.
    server.keepAliveTimeout = 120_000;
    server.headersTimeout = 121_000;
    server.listen(port, '127.0.0.1');
    upstreams.push(u);
  }

  const stop = (): void => {
    for (const u of upstreams) u.server.closeAllConnections();
    let open = upstreams.length;
    for (const u of upstreams) u.server.close(() => (--open === 0 ? process.exit(0) : undefined));
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

// Run only as a script, so the types and CONTROL_PREFIX above can be imported.
if (process.argv[1] !== undefined && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) main();
