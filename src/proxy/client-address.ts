import { BlockList, isIP } from 'node:net';

/**
 * Decides which client address to believe. X-Forwarded-For is only trusted when the peer that
 * sent it is one of `trustedProxies`; then we walk the list from the right, skipping further
 * trusted hops (the nginx `real_ip_recursive` rule), so a client cannot choose its own address.
 */
export class TrustedProxies {
  readonly #list = new BlockList();
  readonly #empty: boolean;

  constructor(cidrs: readonly string[]) {
    for (const entry of cidrs) {
      const [address, prefix] = entry.split('/') as [string, string | undefined];
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (prefix === undefined) this.#list.addAddress(address, family);
      else this.#list.addSubnet(address, Number(prefix), family);
    }
    this.#empty = cidrs.length === 0;
  }

  isTrusted(address: string): boolean {
    if (this.#empty || address === '') return false;
    return this.#list.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
  }

  /** The client address for logs, metrics and rate-limit keys. */
  clientAddress(peer: string, forwardedFor: string | undefined): string {
    if (forwardedFor === undefined || !this.isTrusted(peer)) return peer;
    const hops = forwardedFor.split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!.trim();
      if (isIP(hop) === 0) return peer; // garbage in a trusted header: fall back to what we saw
      if (!this.isTrusted(hop)) return hop;
    }
    return hops[0]!.trim();
  }
}

/** `::ffff:10.0.0.1` → `10.0.0.1`: dual-stack sockets report IPv4 peers in mapped form. */
export function peerAddress(remote: string | undefined): string {
  if (remote === undefined) return '';
  return remote.startsWith('::ffff:') && remote.includes('.') ? remote.slice(7) : remote;
}
