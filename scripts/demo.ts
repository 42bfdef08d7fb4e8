// `npm run demo`: the shipped config/ plus three tiny upstreams on 127.0.0.1:9001-9003, so the
// gateway can be tried with curl on a fresh machine with nothing else installed.
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { loadGatewayConfig } from '../src/config/load.js';
import { Gateway } from '../src/gateway.js';
import { makeDevCert } from './make-dev-cert.js';

const DEMO_PORTS = [9001, 9002, 9003];
const DEMO_HTTPS_PORT = 8443;

function demoUpstream(port: number): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({
        upstream: `demo-${port}`,
        method: req.method,
        path: req.url,
        forwardedFor: req.headers['x-forwarded-for'] ?? null,
        requestId: req.headers['x-request-id'] ?? null,
      }, null, 2);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`${body}\n`);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

async function main(): Promise<void> {
  const upstreams = await Promise.all(DEMO_PORTS.map(demoUpstream));
  const configFile = fileURLToPath(new URL('../../config/gateway.yaml', import.meta.url));
  const shipped = await loadGatewayConfig(configFile);
  // HTTPS with HTTP/2 on a self-signed certificate made for the demo (the shipped config stays
  // plain HTTP, so `npm start` needs no certificate).
  const dev = await makeDevCert({ log: (line) => process.stderr.write(`${line}\n`) });
  const config = {
    ...shipped,
    listeners: [
      ...shipped.listeners,
      { name: 'demo-https', address: '127.0.0.1', port: DEMO_HTTPS_PORT, redirectToHttps: false, tls: { certificates: [{ cert: dev.cert, key: dev.key }], minVersion: 'TLSv1.2' as const, http2: true, clientCa: null } },
    ],
  };
  const gateway = new Gateway({ config });
  await gateway.start();

  const pub = gateway.addresses().find((a) => a.name !== 'admin' && a.name !== 'demo-https');
  const admin = gateway.addresses().find((a) => a.name === 'admin');
  const base = `http://127.0.0.1:${pub?.port ?? 8080}`;
  const adminBase = `http://127.0.0.1:${admin?.port ?? 9901}`;
  process.stderr.write(`
Demo gateway running (config: ${configFile}); demo upstreams on ${DEMO_PORTS.join(', ')}.
Try:
  curl -i ${base}/api/users/42          # balanced over two demo upstreams, prefix stripped
  curl -i ${base}/api/orders/7          # rewritten to /v1/orders/7; RateLimit-* headers (per-ip policy)
  for i in $(seq 45); do curl -s -o /dev/null -w '%{http_code} ' ${base}/api/orders/7; done; echo   # 429 past the burst of 40
  curl -ik --http2 https://localhost:${DEMO_HTTPS_PORT}/api/users/42   # HTTPS + HTTP/2, self-signed (${dev.cert})
  curl -i ${base}/nowhere/%2f           # refused: encoded slash (400)
  curl -s ${adminBase}/upstreams        # pools and endpoints
  curl -s ${adminBase}/metrics | grep gateway_requests_total
  kill -HUP ${process.pid}              # reload config/routes.yaml
Ctrl-C drains and stops.
`);

  process.on('SIGHUP', () => void gateway.reload());
  const stop = (): void => {
    gateway.stop().then(() => {
      for (const u of upstreams) u.close();
      process.exit(0);
    }, () => process.exit(1));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
