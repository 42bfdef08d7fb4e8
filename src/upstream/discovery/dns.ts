// DNS service discovery: a pool's endpoints are the answer to an A, AAAA or SRV question,
// re-asked when the answer's TTL runs out (clamped to minRefresh..maxRefresh).
//
// Why dns2 rather than node:dns: the gateway must re-resolve exactly when the records expire, and
// node:dns reports no TTL for SRV at all (and only an A/AAAA TTL through `{ ttl: true }`). dns2
// asks the server directly and hands back every record with its TTL. The price is that there is no
// OS cache or /etc/hosts in the way: `server: null` means the name servers node:dns would use
// (`getServers()`, tried in order), not getaddrinfo.
//
// Why a failed or empty answer changes nothing: an empty pool turns every request into a 503,
// while the last good addresses are usually still right (a DNS outage rarely means every backend
// moved). So a timeout, SERVFAIL, NXDOMAIN or empty answer keeps the last good set, is reported to
// the events sink, and is retried after minRefresh — not maxRefresh, to recover quickly.
//
// Cost: nothing on the request path — pools read `current()` or are told of a change. Per refresh:
// one query for A/AAAA; for SRV one query plus one or two (A, then AAAA when there is no A) per
// distinct target of the lowest priority group, those in parallel. Each query is bounded by
// DNS_QUERY_TIMEOUT_MS per name server (UDP, and again over TCP when the UDP answer is truncated).
// Timers are unref()ed: a provider never keeps the process alive.

import dns from 'node:dns';
import { connect, isIP, isIPv4, isIPv6 } from 'node:net';
import { Packet, type Resource, UDPClient } from 'dns2';
import { DNS_SERVER_DEFAULT_PORT } from '../../config/defaults.js';
import type { DnsDiscoveryConfig, DnsRecordType, TargetConfig } from '../../config/types.js';
import type { DiscoveryProvider } from './provider.js';

/** Per query and name server; not configurable (a slower DNS server is a broken one). */
export const DNS_QUERY_TIMEOUT_MS = 2000;

/**
 * Where a provider reports each lookup, so the gateway can log and count them. Called after the
 * provider has updated its state (`current()` already returns the new set) and before listeners
 * of a change are called. A sink that throws is ignored: it cannot stop the refresh loop.
 */
export interface DnsDiscoveryEvents {
  /**
   * A lookup gave a usable, non-empty set. `targets` is the whole set now current. `ttlMs` is the
   * answer's TTL (the smallest TTL among the records used: for SRV, the SRV records and the
   * targets' address records; CNAMEs on the way count too) before clamping to
   * minRefresh..maxRefresh. `changed` is true when the set differs from the previous one, i.e.
   * when listeners are about to be told.
   */
  resolved(upstream: string, targets: readonly TargetConfig[], ttlMs: number, changed: boolean): void;
  /**
   * A lookup failed (timeout, SERVFAIL, NXDOMAIN, network error, an answer for another question)
   * or gave no usable record. `reason` is one line for a log. `keptCount` is the size of the last
   * good set, kept and still current (0 before the first success). Retried after minRefresh.
   */
  failed(upstream: string, reason: string, keptCount: number): void;
  /** A change listener threw; the others were still called. Defaults to ignoring it. */
  listenerFailed?(upstream: string, error: unknown): void;
}

export const SILENT_DNS_DISCOVERY_EVENTS: DnsDiscoveryEvents = Object.freeze({
  resolved: () => {},
  failed: () => {},
});

export interface DnsDiscoveryOptions {
  readonly events?: DnsDiscoveryEvents;
  /** Overrides DNS_QUERY_TIMEOUT_MS; for tests, which would rather not wait 2 s for silence. */
  readonly queryTimeoutMs?: number;
}

/** A name server to ask: from `discovery.server` or from `getServers()`. */
export interface NameServer {
  readonly host: string; // an IP address, without brackets
  readonly port: number;
  readonly family: 4 | 6;
  readonly label: string; // `1.2.3.4:53` or `[::1]:53`, for messages
}

/**
 * Parses `address`, `address:port`, a bare IPv6 address or `[v6]:port` — both the normalised
 * `discovery.server` and what `getServers()` returns. Null when it is none of those.
 */
export function parseNameServer(text: string): NameServer | null {
  const bracketed = /^\[([^\]]+)\](?::([0-9]+))?$/.exec(text);
  const plain = bracketed === null && isIP(text) !== 6 ? /^([^:]+)(?::([0-9]+))?$/.exec(text) : null;
  const host = bracketed?.[1] ?? plain?.[1] ?? (isIP(text) === 6 ? text : undefined);
  const portText = bracketed?.[2] ?? plain?.[2];
  if (host === undefined || isIP(host) === 0) return null;
  const port = portText === undefined ? DNS_SERVER_DEFAULT_PORT : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  if (isIP(host) === 4) return { host, port, family: 4, label: `${host}:${port}` };
  // One spelling of the address: dns2 drops replies whose source is not literally the address asked.
  const canonical = host.includes('%') ? host : ipv6Host(host).slice(1, -1);
  return { host: canonical, port, family: 6, label: `[${canonical}]:${port}` };
}

type Outcome = { readonly ok: true; readonly targets: TargetConfig[]; readonly ttlMs: number } | { readonly ok: false; readonly reason: string };

const EMPTY: readonly TargetConfig[] = Object.freeze([]);
// setTimeout fires at once for anything above 2^31 - 1 ms.
const MAX_TIMER_MS = 0x7fffffff;

/**
 * Endpoints from DNS, for one upstream. Target URLs are `http://1.2.3.4:8080` and
 * `http://[::1]:8080`, sorted by URL. A and AAAA targets have weight 1.
 *
 * SRV (RFC 2782): only the lowest-numbered priority group is used (the others are backups, for when
 * it has no record at all; a group whose targets have no address is an empty answer, not a reason
 * to fall back). Port and weight come from each record; weight 0 becomes 1, because the gateway's
 * weights must be > 0 — so a weight-0 record gets an equal share of a group of weight-1 records
 * rather than RFC 2782's "very small chance". Target names resolve through the same server(s): A,
 * then AAAA if the name has no A record (NXDOMAIN or no data). Every address of a target gets the
 * record's full weight; records that end at the same address and port add their weights up. A
 * target "." (service decidedly not available) or port 0 is skipped. Any target lookup that fails
 * (rather than answering "no such name") fails the whole lookup, so a flaky target is not dropped.
 *
 * Records of other types in an answer (a CNAME chain the server followed, anything else) are
 * skipped; their owner name is not checked against the question, since after a CNAME it differs.
 */
export class DnsDiscovery implements DiscoveryProvider {
  /**
   * A provider's identity: equal keys mean one provider can serve both configs, so the gateway
   * keeps it (and its current set) across a reload. Everything that changes what it asks, whom,
   * or how often is part of it; the name is compared as DNS compares it (case, trailing dot).
   */
  static keyOf(upstream: string, config: DnsDiscoveryConfig): string {
    const { dns, server, minRefreshMs, maxRefreshMs } = config;
    return JSON.stringify(['dns', upstream, canonicalName(dns.name), dns.type, dns.port, server, minRefreshMs, maxRefreshMs]);
  }

  readonly upstream: string;
  readonly config: DnsDiscoveryConfig;
  readonly key: string;
  readonly #events: DnsDiscoveryEvents;
  readonly #timeoutMs: number;
  /** Null: ask the system's name servers, read from getServers() at each lookup. */
  readonly #server: NameServer | null;
  readonly #listeners = new Set<(targets: readonly TargetConfig[]) => void>();
  #targets: readonly TargetConfig[] = EMPTY;
  #running = false;
  /** Bumped by start() and stop(): a lookup that finishes under an older value is ignored. */
  #generation = 0;
  #timer: NodeJS.Timeout | null = null;
  readonly #ready: Promise<void>;
  #settleReady: () => void = () => {};

  constructor(upstream: string, config: DnsDiscoveryConfig, options: DnsDiscoveryOptions = {}) {
    this.upstream = upstream;
    this.config = config;
    this.key = DnsDiscovery.keyOf(upstream, config);
    this.#events = options.events ?? SILENT_DNS_DISCOVERY_EVENTS;
    this.#timeoutMs = options.queryTimeoutMs ?? DNS_QUERY_TIMEOUT_MS;
    if (config.server === null) {
      this.#server = null;
    } else {
      this.#server = parseNameServer(config.server);
      if (this.#server === null) throw new Error(`upstream "${upstream}": "${config.server}" is not a DNS server address`);
    }
    this.#ready = new Promise((resolve) => {
      this.#settleReady = resolve;
    });
  }

  current(): readonly TargetConfig[] {
    return this.#targets;
  }

  onChange(listener: (targets: readonly TargetConfig[]) => void): () => void {
    // Wrapped, so one function subscribed twice is two subscriptions, each removable on its own.
    const entry = (targets: readonly TargetConfig[]): void => listener(targets);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  /** Settles after the first lookup that follows start() (success or failure), or on stop(). Never rejects. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** Resolves at once, then on the TTL. Calling it while running does nothing. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    void this.#cycle(++this.#generation);
  }

  /** Clears the timer; a lookup in flight finishes but its answer is ignored. Keeps current(). */
  stop(): void {
    this.#settleReady();
    if (!this.#running) return;
    this.#running = false;
    this.#generation++;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  async #cycle(generation: number): Promise<void> {
    let outcome: Outcome;
    try {
      outcome = await this.#resolve();
    } catch (err) {
      outcome = { ok: false, reason: describe(err) };
    }
    if (generation !== this.#generation) return;

    let delayMs: number;
    if (outcome.ok) {
      const changed = !sameSet(this.#targets, outcome.targets);
      if (changed) this.#targets = Object.freeze(outcome.targets.map((t) => Object.freeze(t)));
      this.#report(() => this.#events.resolved(this.upstream, this.#targets, outcome.ttlMs, changed));
      if (changed) this.#notify(this.#targets);
      delayMs = Math.min(Math.max(outcome.ttlMs, this.config.minRefreshMs), this.config.maxRefreshMs);
    } else {
      this.#report(() => this.#events.failed(this.upstream, outcome.reason, this.#targets.length));
      delayMs = this.config.minRefreshMs;
    }
    this.#settleReady();
    // A listener may have stopped the provider.
    if (generation !== this.#generation) return;
    this.#timer = setTimeout(() => void this.#cycle(generation), Math.min(delayMs, MAX_TIMER_MS));
    this.#timer.unref();
  }

  #report(call: () => void): void {
    try {
      call();
    } catch {
      // The sink only observes; its failure must not stop discovery.
    }
  }

  #notify(targets: readonly TargetConfig[]): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(targets);
      } catch (err) {
        this.#report(() => this.#events.listenerFailed?.(this.upstream, err));
      }
    }
  }

  #servers(): readonly NameServer[] {
    if (this.#server !== null) return [this.#server];
    // Through the module object: dns.setServers() rebinds `getServers`, so a named ESM import of it
    // would keep answering with the servers of startup.
    return dns.getServers().flatMap((text) => parseNameServer(text) ?? []);
  }

  async #resolve(): Promise<Outcome> {
    const { name, type, port } = this.config.dns;
    const servers = this.#servers();
    if (servers.length === 0) return { ok: false, reason: 'no DNS server: the system resolver has none configured' };
    if (type === 'SRV') return this.#resolveSrv(servers, name);
    if (port === null) return { ok: false, reason: `${type} discovery of ${name} has no port` };
    const answer = await lookup(servers, name, type, this.#timeoutMs);
    if (answer.nxdomain) return { ok: false, reason: `${type} ${name}: NXDOMAIN from ${answer.server}` };
    const hosts = addressesOf(answer.records, type);
    if (hosts.length === 0) return { ok: false, reason: `${type} ${name}: empty answer from ${answer.server}` };
    const targets = new Map<string, number>();
    for (const host of hosts) targets.set(`http://${host}:${port}`, 1);
    return { ok: true, targets: toTargets(targets), ttlMs: answer.ttlS * 1000 };
  }

  async #resolveSrv(servers: readonly NameServer[], name: string): Promise<Outcome> {
    const answer = await lookup(servers, name, 'SRV', this.#timeoutMs);
    if (answer.nxdomain) return { ok: false, reason: `SRV ${name}: NXDOMAIN from ${answer.server}` };
    const usable = answer.records.filter(
      (r) =>
        typeof r.target === 'string' &&
        canonicalName(r.target) !== '' &&
        Number.isInteger(r.port) && r.port! >= 1 && r.port! <= 65535 &&
        Number.isInteger(r.priority) &&
        Number.isInteger(r.weight),
    );
    if (usable.length === 0) return { ok: false, reason: `SRV ${name}: empty answer from ${answer.server}` };
    const lowest = Math.min(...usable.map((r) => r.priority!));
    const group = usable.filter((r) => r.priority === lowest);

    const names = [...new Set(group.map((r) => canonicalName(r.target!)))];
    const resolved = new Map<string, HostAddresses>();
    const failures: string[] = [];
    await Promise.all(
      names.map(async (target) => {
        try {
          resolved.set(target, await this.#resolveHost(servers, target));
        } catch (err) {
          failures.push(`target ${target}: ${describe(err)}`);
        }
      }),
    );
    if (failures.length > 0) return { ok: false, reason: `SRV ${name}: ${failures.sort().join('; ')}` };

    let ttlS = answer.ttlS;
    const targets = new Map<string, number>();
    for (const record of group) {
      const host = resolved.get(canonicalName(record.target!));
      if (host === undefined || host.hosts.length === 0) continue;
      if (host.ttlS !== null) ttlS = Math.min(ttlS, host.ttlS);
      // Our weights must be > 0 (see the class comment).
      const weight = Math.max(1, record.weight!);
      for (const address of host.hosts) {
        const url = `http://${address}:${record.port!}`;
        targets.set(url, (targets.get(url) ?? 0) + weight);
      }
    }
    if (targets.size === 0) {
      return { ok: false, reason: `SRV ${name}: empty answer: no address for ${names.sort().join(', ')} from ${answer.server}` };
    }
    return { ok: true, targets: toTargets(targets), ttlMs: ttlS * 1000 };
  }

  async #resolveHost(servers: readonly NameServer[], name: string): Promise<HostAddresses> {
    // Not RFC 2782, but seen in the wild: a target that is already an address.
    if (isIPv4(name)) return { hosts: [name], ttlS: null };
    if (isIPv6(name)) return { hosts: [ipv6Host(name)], ttlS: null };
    const a = await lookup(servers, name, 'A', this.#timeoutMs);
    const v4 = addressesOf(a.records, 'A');
    if (v4.length > 0) return { hosts: v4, ttlS: a.ttlS };
    if (a.nxdomain) return { hosts: [], ttlS: null };
    const aaaa = await lookup(servers, name, 'AAAA', this.#timeoutMs);
    return { hosts: addressesOf(aaaa.records, 'AAAA'), ttlS: aaaa.ttlS };
  }
}

interface HostAddresses {
  readonly hosts: readonly string[]; // URL host form: 1.2.3.4 or [::1]
  readonly ttlS: number | null; // null: no record to expire
}

interface Answer {
  readonly server: string;
  readonly nxdomain: boolean;
  /** Records of the type asked, in class IN. */
  readonly records: readonly Resource[];
  /** Smallest TTL of those records and of any CNAME in the answer; Infinity when there are none. */
  readonly ttlS: number;
}

/**
 * Asks each name server in turn until one answers NOERROR or NXDOMAIN. A timeout, network error,
 * SERVFAIL, REFUSED or any other failure moves on to the next; when none is left, throws with
 * every server's reason.
 */
async function lookup(servers: readonly NameServer[], name: string, type: DnsRecordType, timeoutMs: number): Promise<Answer> {
  const problems: string[] = [];
  for (const server of servers) {
    let response: Packet;
    try {
      response = await query(server, name, type, timeoutMs);
    } catch (err) {
      problems.push(`${describe(err)} (${server.label})`);
      continue;
    }
    const rcode = response.header.rcode;
    if (rcode !== Packet.RCODE.NOERROR && rcode !== Packet.RCODE.NXDOMAIN) {
      problems.push(`${rcodeName(rcode)} from ${server.label}`);
      continue;
    }
    const wanted = Packet.TYPE[type];
    const records = response.answers.filter((r) => r.type === wanted && r.class === Packet.CLASS.IN);
    let ttlS = Infinity;
    for (const r of response.answers) {
      if (r.type === wanted || r.type === Packet.TYPE.CNAME) ttlS = Math.min(ttlS, r.ttl);
    }
    // NXDOMAIN with records is contradictory; trust the records (they came from the server too).
    return { server: server.label, nxdomain: rcode === Packet.RCODE.NXDOMAIN && records.length === 0, records, ttlS };
  }
  throw new Error(`${type} ${name}: ${problems.join('; ')}`);
}

/** One question to one server: UDP, and TCP when the UDP answer says it was truncated. */
async function query(server: NameServer, name: string, type: DnsRecordType, timeoutMs: number): Promise<Packet> {
  const udp = UDPClient({
    dns: server.host,
    port: server.port,
    socketType: server.family === 6 ? 'udp6' : 'udp4',
    timeout: timeoutMs,
    // dns2's own TCP retry has no timeout and cannot reach an IPv6 server: see queryTcp.
    retryOverTCP: false,
  });
  let response = await udp(name, type);
  if (response.header.tc === 1) response = await queryTcp(server, name, type, timeoutMs);
  checkQuestion(response, name, type);
  return response;
}

/**
 * DNS over TCP (RFC 1035 §4.2.2), bounded by `timeoutMs`. dns2's TCPClient would do, but it has no
 * timeout (a silent server would hold the lookup, and so the refresh loop, forever) and splits its
 * host on ':' (so no IPv6 server).
 */
async function queryTcp(server: NameServer, name: string, type: DnsRecordType, timeoutMs: number): Promise<Packet> {
  const request = new Packet();
  request.header.id = Packet.uuid();
  request.header.rd = 1;
  request.questions.push(new Packet.Question(name, Packet.TYPE[type], Packet.CLASS.IN));
  const message = request.toBuffer();
  const frame = Buffer.alloc(2 + message.length);
  frame.writeUInt16BE(message.length, 0);
  message.copy(frame, 2);

  const socket = connect({ host: server.host, port: server.port });
  // readStream rejects on 'error'; this listener only keeps an error after that from being fatal.
  socket.on('error', () => {});
  const timer = setTimeout(() => socket.destroy(new Error(`DNS query over TCP timed out after ${timeoutMs}ms`)), timeoutMs);
  timer.unref();
  try {
    socket.write(frame);
    const response = Packet.parse(await Packet.readStream(socket));
    if (response.header.id !== request.header.id) throw new Error('TCP answer carries another query id');
    return response;
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}

/** An answer to some other question is not an answer (a confused or hostile server). */
function checkQuestion(response: Packet, name: string, type: DnsRecordType): void {
  const question = response.questions[0];
  if (question === undefined) return; // allowed: some servers leave the question out of errors
  if (canonicalName(question.name) !== canonicalName(name) || question.type !== Packet.TYPE[type]) {
    throw new Error(`answer is for ${Packet.typeName(question.type)} ${question.name}, not the question asked`);
  }
}

/** Valid addresses of `type` among `records`, as URL hosts, without repeats. */
function addressesOf(records: readonly Resource[], type: 'A' | 'AAAA'): string[] {
  const hosts = new Set<string>();
  for (const record of records) {
    const address = record.address;
    if (typeof address !== 'string') continue;
    if (type === 'A' && record.type === Packet.TYPE.A && isIPv4(address)) hosts.add(address);
    if (type === 'AAAA' && record.type === Packet.TYPE.AAAA && isIPv6(address)) hosts.add(ipv6Host(address));
  }
  return [...hosts];
}

/** `[::1]`: through URL, so one address has one spelling (compressed, lower case), one endpoint. */
function ipv6Host(address: string): string {
  return new URL(`http://[${address}]/`).hostname;
}

function toTargets(weights: ReadonlyMap<string, number>): TargetConfig[] {
  return [...weights].map(([url, weight]) => ({ url, weight })).sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
}

/** Same URLs with the same weights, in any order. */
function sameSet(a: readonly TargetConfig[], b: readonly TargetConfig[]): boolean {
  if (a.length !== b.length) return false;
  const weights = new Map(a.map((t) => [t.url, t.weight]));
  return weights.size === b.length && b.every((t) => weights.get(t.url) === t.weight);
}

function canonicalName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

function rcodeName(rcode: number): string {
  const entry = Object.entries(Packet.RCODE).find(([, code]) => code === rcode);
  return entry === undefined ? `RCODE ${rcode}` : entry[0];
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
