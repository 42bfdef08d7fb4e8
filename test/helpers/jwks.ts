// A JSON Web Key Set endpoint for tests: a real HTTP server on a loopback port whose answer a test
// changes at any time — a key set (rotate by setting another), a 500, silence, a slow answer, any
// body (garbage, a huge one) — and which counts the fetches it received. Keys and tokens are made
// with jose, as an issuer would.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, generateSecret, type JWK, type JWTPayload, SignJWT } from 'jose';
import type { JwtAlgorithm } from '../../src/config/types.js';

export type JwksBehaviour =
  | 'serve' // the current key set (or the body set with setBody), 200
  | 'fail' // 500 with a small error page
  | 'hang'; // read the request, never answer

export const JWKS_PATH = '/.well-known/jwks.json';

export class TestJwksServer {
  behaviour: JwksBehaviour = 'serve';
  /** Hold every answer this long (a slow endpoint). */
  delayMs = 0;
  /** performance.now() of each fetch received, in order. */
  readonly fetchTimes: number[] = [];
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #hung = new Set<ServerResponse>();
  #body = '{"keys":[]}';
  #contentType = 'application/json';
  #url = '';

  private constructor() {
    this.#server = createServer((req, res) => this.#handle(req, res));
    this.#server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  static async start(): Promise<TestJwksServer> {
    const server = new TestJwksServer();
    await new Promise<void>((resolve) => server.#server.listen(0, '127.0.0.1', resolve));
    const { port } = server.#server.address() as AddressInfo;
    server.#url = `http://127.0.0.1:${port}${JWKS_PATH}`;
    return server;
  }

  /** The jwksUri to configure. */
  get url(): string {
    return this.#url;
  }

  /** Fetches received so far (any path, any behaviour). */
  get fetches(): number {
    return this.fetchTimes.length;
  }

  /** Serve `{ keys }` from now on (a rotation is just another call). */
  setKeys(keys: readonly JWK[]): void {
    this.#body = JSON.stringify({ keys });
    this.#contentType = 'application/json';
  }

  /** Serve this exact body with status 200: garbage, a non-JWKS document, a huge one. */
  setBody(body: string, contentType = 'application/json'): void {
    this.#body = body;
    this.#contentType = contentType;
  }

  /** Waits until `count` fetches have arrived in all. */
  async waitForFetches(count: number, timeoutMs = 5000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.fetches < count) {
      if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${count} JWKS fetches (got ${this.fetches})`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async close(): Promise<void> {
    for (const res of this.#hung) res.destroy();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    this.fetchTimes.push(performance.now());
    req.resume();
    const behaviour = this.behaviour;
    const body = this.#body;
    const contentType = this.#contentType;
    const answer = (): void => {
      if (behaviour === 'hang') {
        this.#hung.add(res);
        return;
      }
      if (behaviour === 'fail') {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error');
        return;
      }
      res.writeHead(200, { 'content-type': contentType }).end(body);
    };
    if (this.delayMs > 0) setTimeout(answer, this.delayMs);
    else answer();
  }
}

/** A signing key as an issuer holds it, and the public JWK it publishes. */
export interface TestKey {
  readonly kid: string;
  readonly alg: JwtAlgorithm;
  readonly privateKey: CryptoKey | Uint8Array;
  /** What goes into the JWKS: kid, alg and use set unless `bareJwk` was asked for. */
  readonly jwk: JWK;
}

export interface MakeKeyOptions {
  /** Publish the JWK without `alg` and `use`. */
  readonly bareJwk?: boolean;
  /** Extra JWK members (e.g. `use: 'enc'`), applied last. */
  readonly jwk?: Partial<JWK>;
}

export async function makeKey(alg: JwtAlgorithm, kid: string, options: MakeKeyOptions = {}): Promise<TestKey> {
  let privateKey: CryptoKey | Uint8Array;
  let publicJwk: JWK;
  if (alg.startsWith('HS')) {
    const secret = await generateSecret(alg, { extractable: true });
    privateKey = secret;
    publicJwk = await exportJWK(secret);
  } else {
    const pair = await generateKeyPair(alg, { extractable: true });
    privateKey = pair.privateKey;
    publicJwk = await exportJWK(pair.publicKey);
  }
  const jwk: JWK = { ...publicJwk, kid, ...(options.bareJwk === true ? {} : { alg, use: 'sig' }), ...options.jwk };
  return { kid, alg, privateKey, jwk };
}

export interface MintOptions {
  /** Header members to set or override (alg, kid, typ, ...); `kid: undefined` leaves it out. */
  readonly header?: Record<string, unknown>;
  /** Sign as this algorithm instead of the key's (for confusion tests). */
  readonly alg?: string;
}

/** A compact JWS with exactly these claims (no defaults added). */
export async function mint(key: TestKey, claims: JWTPayload, options: MintOptions = {}): Promise<string> {
  const alg = options.alg ?? key.alg;
  const header: Record<string, unknown> = { alg, kid: key.kid, typ: 'JWT', ...options.header };
  for (const name of Object.keys(header)) if (header[name] === undefined) delete header[name];
  return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key.privateKey);
}

/** Seconds since the epoch, as JWT numeric dates are. */
export const nowS = (): number => Math.floor(Date.now() / 1000);
