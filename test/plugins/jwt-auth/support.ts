// Shared by the jwt-auth tests: real requests (an IncomingMessage parsed by Node from bytes sent
// over a socket, so duplicate and oddly spelled headers arrive exactly as a client sent them),
// filter contexts around them, provider configs, and an events recorder.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import type { JwtProviderConfig } from '../../../src/config/types.js';
import type { FilterContext } from '../../../src/filters/filter.js';
import type { JwksFetchDetail, JwksFetchResult, JwtEvents, JwtVerificationResult } from '../../../plugins/jwt-auth/index.js';

export const ISSUER = 'https://id.example.com/';

/** Hands out real requests: each call sends one over TCP and returns what the server parsed. */
export class RequestSource {
  readonly #server: Server;
  readonly #pending = new Map<string, (req: IncomingMessage) => void>();
  #port = 0;
  #next = 0;

  private constructor() {
    this.#server = createServer((req, res) => {
      const id = req.headers['x-probe'];
      const deliver = typeof id === 'string' ? this.#pending.get(id) : undefined;
      if (deliver !== undefined) {
        this.#pending.delete(id as string);
        deliver(req);
      }
      res.end();
    });
    // 200 concurrent probes must not queue behind the default backlog.
    this.#server.maxConnections = 10_000;
  }

  static async start(): Promise<RequestSource> {
    const source = new RequestSource();
    await new Promise<void>((resolve) => source.#server.listen(0, '127.0.0.1', 1024, resolve));
    source.#port = (source.#server.address() as AddressInfo).port;
    return source;
  }

  /** A request carrying these header lines, in this order and spelling (e.g. two Authorization). */
  async request(headers: readonly (readonly [string, string])[] = []): Promise<IncomingMessage> {
    const id = String(++this.#next);
    const received = new Promise<IncomingMessage>((resolve) => this.#pending.set(id, resolve));
    const lines = ['GET /resource HTTP/1.1', 'Host: gateway.test', `X-Probe: ${id}`, 'Connection: close', ...headers.map(([n, v]) => `${n}: ${v}`)];
    const socket = connect(this.#port, '127.0.0.1');
    socket.on('error', () => {});
    socket.on('data', () => {});
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    const req = await received;
    socket.end();
    return req;
  }

  /** A request with `Authorization: Bearer <token>`. */
  bearer(token: string): Promise<IncomingMessage> {
    return this.request([['Authorization', `Bearer ${token}`]]);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

export function context(req: IncomingMessage, routeName = 'users'): FilterContext {
  return { req, requestId: 'req-1', clientIp: '127.0.0.1', routeName, upstreamHeaders: {}, responseHeaders: {}, attributes: new Map(), claims: null };
}

export function providerConfig(overrides: Partial<JwtProviderConfig> = {}): JwtProviderConfig {
  return {
    name: 'main',
    issuer: ISSUER,
    audiences: ['api'],
    jwksUri: null,
    jwksFile: null,
    jwksCacheMaxAgeMs: 60_000,
    jwksRefetchCooldownMs: 200,
    algorithms: ['RS256', 'ES256', 'EdDSA'],
    clockSkewMs: 30_000,
    forwardClaims: {},
    ...overrides,
  };
}

export interface Recorded {
  readonly events: JwtEvents;
  readonly verifications: { provider: string; result: JwtVerificationResult; reason: string | null }[];
  readonly fetches: { provider: string; result: JwksFetchResult; detail: JwksFetchDetail }[];
  readonly rejected: { provider: string; kid: string | null; reason: string }[];
  readonly denied: { provider: string; route: string; claim: string }[];
}

export function recorder(): Recorded {
  const r: Recorded = {
    verifications: [],
    fetches: [],
    rejected: [],
    denied: [],
    events: {
      verification: (provider, result, reason) => r.verifications.push({ provider, result, reason }),
      jwksFetch: (provider, result, detail) => r.fetches.push({ provider, result, detail }),
      keyRejected: (provider, kid, reason) => r.rejected.push({ provider, kid, reason }),
      denied: (provider, route, claim) => r.denied.push({ provider, route, claim }),
    },
  };
  return r;
}

/** Resolves what a filter's apply returned, sync or not. */
export async function settle<T>(value: T | Promise<T>): Promise<T> {
  return value;
}
