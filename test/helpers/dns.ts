// An in-process authoritative DNS server for tests: real UDP (and TCP on the same port) on a
// loopback address and a free port, built on dns2's server. A test changes its answers at any
// time — records with TTLs, CNAME chains, SERVFAIL, NXDOMAIN, empty answers, silence — and reads
// back which queries arrived and when, so refresh intervals can be measured from the server side.
import type { Socket as NetSocket } from 'node:net';
import { Packet, type Resource, TCPServer, UDPServer } from 'dns2';

/** How the server treats a question (for one name, or for every name). */
export type DnsBehaviour =
  | 'answer' // the records set for the name; NXDOMAIN for an unknown name
  | 'servfail'
  | 'nxdomain'
  | 'empty' // NOERROR with no answers
  | 'refused'
  | 'timeout'; // never replies

export type DnsRecordType = 'A' | 'AAAA' | 'SRV' | 'CNAME' | 'TXT';

export interface SrvRecord {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  readonly target: string;
}

/** One record as the test describes it; `type` may differ from the question (hostile answers). */
export type TestRecord =
  | { readonly type: 'A' | 'AAAA'; readonly address: string; readonly ttl: number; readonly name?: string }
  | { readonly type: 'SRV'; readonly srv: SrvRecord; readonly ttl: number; readonly name?: string }
  | { readonly type: 'CNAME'; readonly domain: string; readonly ttl: number; readonly name?: string }
  | { readonly type: 'TXT'; readonly data: string; readonly ttl: number; readonly name?: string };

export interface SeenQuery {
  readonly name: string; // lower case, no trailing dot
  readonly type: string; // 'A', 'AAAA', 'SRV', ...
  readonly transport: 'udp' | 'tcp';
  readonly at: number; // performance.now()
}

const canonical = (name: string): string => name.toLowerCase().replace(/\.$/, '');

export class TestDnsServer {
  readonly host: string;
  readonly queries: SeenQuery[] = [];
  /** Applies to names without a behaviour of their own. */
  behaviour: DnsBehaviour = 'answer';
  /** Answer UDP queries with TC=1 and nothing else, so clients must retry over TCP. */
  truncateUdp = false;
  /** Hold every reply this long, so a test can act while an answer is in flight. */
  delayMs = 0;
  readonly #records = new Map<string, TestRecord[]>(); // key: `${name}|${type}`
  readonly #behaviours = new Map<string, DnsBehaviour>();
  readonly #udp: UDPServer;
  readonly #tcp: TCPServer;
  readonly #tcpSockets = new Set<NetSocket>();
  #port = 0;
  #closed = false;

  private constructor(host: string) {
    this.host = host;
    this.#udp = new UDPServer({ type: host.includes(':') ? 'udp6' : 'udp4' });
    this.#udp.on('request', (request, send) => this.#handle(request, send, 'udp'));
    this.#tcp = new TCPServer();
    this.#tcp.on('request', (request, send) => this.#handle(request, send, 'tcp'));
    this.#tcp.on('connection', (socket: NetSocket) => {
      this.#tcpSockets.add(socket);
      socket.on('close', () => this.#tcpSockets.delete(socket));
    });
    // A client that gives up (timeout) resets its connection; that is not a test failure.
    this.#udp.on('requestError', () => {});
    this.#tcp.on('requestError', () => {});
  }

  /** UDP and TCP on one free port of `host` (127.0.0.1 or ::1). */
  static async start(host = '127.0.0.1'): Promise<TestDnsServer> {
    // Port 0 picks a free UDP port; the same TCP port is almost always free too. When it is not,
    // start over with fresh sockets (a dgram socket cannot be bound twice).
    for (let attempt = 0; ; attempt++) {
      const server = new TestDnsServer(host);
      await server.#udp.listen(0, host);
      const port = server.#udp.address().port;
      try {
        await new Promise<void>((resolve, reject) => {
          server.#tcp.once('error', reject);
          server.#tcp.listen(port, host, () => {
            server.#tcp.off('error', reject);
            resolve();
          });
        });
        server.#port = port;
        return server;
      } catch (err) {
        server.#udp.close();
        if (attempt >= 20) throw err;
      }
    }
  }

  get port(): number {
    return this.#port;
  }

  /** The `server:` value for the discovery config: `127.0.0.1:port` or `[::1]:port`. */
  get address(): string {
    return this.host.includes(':') ? `[${this.host}]:${this.#port}` : `${this.host}:${this.#port}`;
  }

  /** Replace the records answered for (name, type). An empty list: the name exists, no data. */
  set(name: string, type: DnsRecordType, records: readonly TestRecord[]): void {
    this.#records.set(`${canonical(name)}|${type}`, [...records]);
  }

  setA(name: string, addresses: readonly string[], ttl: number): void {
    this.set(name, 'A', addresses.map((address) => ({ type: 'A', address, ttl })));
  }

  setAAAA(name: string, addresses: readonly string[], ttl: number): void {
    this.set(name, 'AAAA', addresses.map((address) => ({ type: 'AAAA', address, ttl })));
  }

  setSRV(name: string, records: readonly SrvRecord[], ttl: number): void {
    this.set(name, 'SRV', records.map((srv) => ({ type: 'SRV', srv, ttl })));
  }

  /** `name` is an alias of `target`: every question for it follows the chain, as a recursor does. */
  setCNAME(name: string, target: string, ttl: number): void {
    this.set(name, 'CNAME', [{ type: 'CNAME', domain: target, ttl }]);
  }

  /** Forget every record of `name`, so it answers NXDOMAIN. */
  remove(name: string): void {
    for (const key of [...this.#records.keys()]) if (key.startsWith(`${canonical(name)}|`)) this.#records.delete(key);
  }

  /** A behaviour for one name only; `null` returns it to the server-wide `behaviour`. */
  setBehaviour(name: string, behaviour: DnsBehaviour | null): void {
    if (behaviour === null) this.#behaviours.delete(canonical(name));
    else this.#behaviours.set(canonical(name), behaviour);
  }

  queriesFor(name: string, type: string): SeenQuery[] {
    return this.queries.filter((q) => q.name === canonical(name) && q.type === type);
  }

  /** Resolves once `count` queries for (name, type) have arrived in total; rejects after `timeoutMs`. */
  async waitForQueries(name: string, type: string, count: number, timeoutMs = 10_000): Promise<SeenQuery[]> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const seen = this.queriesFor(name, type);
      if (seen.length >= count) return seen;
      if (performance.now() > deadline) {
        throw new Error(`waited ${timeoutMs} ms for ${count} ${type} queries for ${name}; saw ${seen.length}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const socket of this.#tcpSockets) socket.destroy();
    await Promise.all([
      new Promise<void>((resolve) => this.#udp.close(() => resolve())),
      new Promise<void>((resolve) => this.#tcp.close(() => resolve())),
    ]);
  }

  #handle(request: Packet, send: (response: Packet) => Promise<Buffer>, transport: 'udp' | 'tcp'): void {
    const question = request.questions[0];
    if (question === undefined) return;
    const name = canonical(question.name);
    const type = Packet.typeName(question.type);
    this.queries.push({ name, type, transport, at: performance.now() });

    const behaviour = this.#behaviours.get(name) ?? this.behaviour;
    if (behaviour === 'timeout') return;
    const response = Packet.createResponseFromRequest(request);
    response.header.aa = 1;
    if (behaviour === 'servfail') response.header.rcode = Packet.RCODE.SERVFAIL;
    else if (behaviour === 'refused') response.header.rcode = Packet.RCODE.REFUSED;
    else if (behaviour === 'nxdomain') response.header.rcode = Packet.RCODE.NXDOMAIN;
    else if (behaviour === 'answer') this.#answer(response, question.name, type);

    if (transport === 'udp' && this.truncateUdp) {
      response.header.tc = 1;
      response.answers = [];
    }
    // The socket may be closed by the time a delayed reply goes out; that is the test's intent.
    const reply = (): void => void send(response).catch(() => {});
    if (this.delayMs > 0) setTimeout(reply, this.delayMs).unref();
    else reply();
  }

  #answer(response: Packet, asked: string, type: string): void {
    // Follow CNAMEs the way a recursive server does: the chain, then the records at its end.
    let name = canonical(asked);
    let owner = asked;
    for (let hops = 0; hops < 8; hops++) {
      const alias = this.#records.get(`${name}|CNAME`)?.[0];
      if (alias === undefined || alias.type !== 'CNAME' || type === 'CNAME') break;
      response.answers.push(toResource(owner, alias));
      owner = alias.domain;
      name = canonical(alias.domain);
    }
    const records = this.#records.get(`${name}|${type}`);
    if (records === undefined) {
      const known = [...this.#records.keys()].some((key) => key.startsWith(`${name}|`));
      if (!known && response.answers.length === 0) response.header.rcode = Packet.RCODE.NXDOMAIN;
      return;
    }
    for (const record of records) response.answers.push(toResource(owner, record));
  }
}

function toResource(owner: string, record: TestRecord): Resource {
  const base = { name: record.name ?? owner, class: Packet.CLASS.IN, ttl: record.ttl };
  switch (record.type) {
    case 'A':
      return new Packet.Resource({ ...base, type: Packet.TYPE.A, address: record.address });
    case 'AAAA':
      return new Packet.Resource({ ...base, type: Packet.TYPE.AAAA, address: record.address });
    case 'SRV':
      return new Packet.Resource({ ...base, type: Packet.TYPE.SRV, ...record.srv });
    case 'CNAME':
      return new Packet.Resource({ ...base, type: Packet.TYPE.CNAME, domain: record.domain });
    case 'TXT':
      return new Packet.Resource({ ...base, type: Packet.TYPE.TXT, data: record.data });
  }
}
