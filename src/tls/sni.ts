// Picks the certificate a TLS handshake is answered with, from the server name the client sent
// (SNI): an exact name first, then a wildcard covering it, then the listener's default (its first
// certificate). Clients that send no name (an IP literal, old clients) get the default too.
//
// Why two maps rather than a list of patterns: the lookup runs once per handshake, so it is one
// Map lookup for the exact name plus, when that misses, one for the name's parent in the wildcard
// map (`*.example.com` is stored under `example.com`). A wildcard covers exactly one label, as
// clients check it (RFC 6125 §6.4.3): `*.example.com` matches `a.example.com`, not
// `example.com` nor `a.b.example.com`. The cost is independent of the number of certificates.
//
// When two certificates claim the same name, the one listed first wins, so the order in the
// config file is the tie-breaker an operator can see. The loader reports such overlaps.

/** What the selector chooses between: anything carrying the names it serves. */
export interface NamedEntry {
  /**
   * Lower-cased, without a trailing dot; may start with `*.` (a one-label wildcard). IP addresses
   * may appear too: only non-conforming clients send them as SNI (RFC 6066 forbids it).
   */
  readonly names: readonly string[];
}

/**
 * A server name as the selector compares it: lower-cased, one trailing dot removed. Names in
 * certificates are stored in this form once, at load; a handshake's name is normalised per lookup.
 */
export function normalizeServerName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

export class SniSelector<T extends NamedEntry> {
  readonly #exact = new Map<string, T>();
  readonly #wildcard = new Map<string, T>();
  /** The first entry: answers unknown names and handshakes without SNI. */
  readonly default: T;
  readonly entries: readonly T[];

  /** `entries` in configuration order; at least one. */
  constructor(entries: readonly T[]) {
    const first = entries[0];
    if (first === undefined) throw new Error('an SNI selector needs at least one certificate');
    this.default = first;
    this.entries = entries;
    for (const entry of entries) {
      for (const raw of entry.names) {
        const name = normalizeServerName(raw);
        if (name.startsWith('*.')) {
          const parent = name.slice(2);
          if (parent !== '' && !this.#wildcard.has(parent)) this.#wildcard.set(parent, entry);
        } else if (name !== '' && !this.#exact.has(name)) {
          this.#exact.set(name, entry);
        }
      }
    }
  }

  /** The entry for a handshake's server name; the default when there is none or nothing matches. */
  select(serverName: string | null | undefined): T {
    if (!serverName) return this.default;
    const name = normalizeServerName(serverName);
    const exact = this.#exact.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    if (dot > 0) {
      const wildcard = this.#wildcard.get(name.slice(dot + 1));
      if (wildcard !== undefined) return wildcard;
    }
    return this.default;
  }

  /** The entry a name is served by, or null when only the default would answer it. */
  match(serverName: string): T | null {
    const chosen = this.select(serverName);
    if (chosen !== this.default) return chosen;
    // The default may also own the name explicitly: tell "matched the default" from "fell back".
    const name = normalizeServerName(serverName);
    if (this.#exact.get(name) === chosen) return chosen;
    const dot = name.indexOf('.');
    if (dot > 0 && this.#wildcard.get(name.slice(dot + 1)) === chosen) return chosen;
    return null;
  }
}
