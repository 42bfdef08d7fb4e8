// The baseline: fastify 5 + @fastify/http-proxy to one fixed upstream, logger off, nothing else.
// It is what "a Node proxy with no gateway features" costs on this machine, so the gateway's
// figures are read as a ratio against it (PERF-NOTES: absolute figures swing ±25–60 % here).
//
//   node dist/load-tests/bare-proxy.js PORT PREFIX UPSTREAM_URL
import proxy from '@fastify/http-proxy';
import Fastify from 'fastify';

const [portArg, prefix, upstream] = process.argv.slice(2);
const port = Number(portArg);
if (!Number.isInteger(port) || port <= 0 || prefix === undefined || upstream === undefined) {
  process.stderr.write('usage: bare-proxy PORT PREFIX UPSTREAM_URL\n');
  process.exit(2);
}

const app = Fastify({ logger: false });
// With a prefix and no rewritePrefix, /api/items is forwarded as /items: the same request the
// gateway's `stripPrefix: true` route sends upstream.
await app.register(proxy, { upstream, prefix });
await app.listen({ host: '127.0.0.1', port });

const stop = (): void => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
  setTimeout(() => process.exit(0), 2000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
