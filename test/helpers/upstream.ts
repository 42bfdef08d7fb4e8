import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  readonly bodyLength: number;
}

export type UpstreamBehaviour = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/** By default an upstream answers 200 with JSON describing what it received. */
export const echo: UpstreamBehaviour = (req, res, body) => {
  const payload = JSON.stringify({
    method: req.method,
    url: req.url,
    headers: req.headers,
    bodyLength: body.length,
  });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
};

/**
 * A real HTTP server on 127.0.0.1 with a free port, recording what it saw. `behaviour` can be
 * swapped at any time. `consumeBody: false` leaves bodies unread (for streaming tests).
 */
export class TestUpstream {
  readonly server: Server;
  readonly seen: SeenRequest[] = [];
  behaviour: UpstreamBehaviour;
  readonly #sockets = new Set<Socket>();
  #port = 0;

  constructor(behaviour: UpstreamBehaviour = echo, readonly options: { consumeBody?: boolean } = {}) {
    this.behaviour = behaviour;
    this.server = createServer((req, res) => this.#handle(req, res));
    this.server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.options.consumeBody === false) {
      this.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, bodyLength: -1 });
      this.behaviour(req, res, Buffer.alloc(0));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      this.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, bodyLength: body.length });
      this.behaviour(req, res, body);
    });
  }

  async start(port = 0): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
    this.#port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get address(): string {
    return `127.0.0.1:${this.#port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export async function startUpstreams(n: number, behaviour: UpstreamBehaviour = echo): Promise<TestUpstream[]> {
  return Promise.all(Array.from({ length: n }, () => new TestUpstream(behaviour).start()));
}

/** A port that was free a moment ago and has nothing listening: connections to it are refused. */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
