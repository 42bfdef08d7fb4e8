import type { UpstreamConfig } from '../../config/types.js';
import { KeptResources } from '../../snapshot/kept-resources.js';
import { DnsDiscovery, type DnsDiscoveryEvents } from './dns.js';
import type { DiscoveryProvider } from './provider.js';

// How long a reload waits for a new provider's first answer before going live without it (the
// pool then starts empty and fills in when DNS answers). Covers a query timeout and a retry.
const FIRST_LOOKUP_WAIT_MS = 5000;

/**
 * Keeps one DNS provider per discovered pool alive across reloads while its identity (name, type,
 * server, refresh bounds) is unchanged, so a reload never starts a pool empty or re-resolves what
 * it already knows. Providers no live snapshot uses are stopped.
 */
export class DiscoveryRegistry {
  readonly #providers = new KeptResources<DnsDiscovery>();
  readonly #events: DnsDiscoveryEvents;
  readonly #firstLookupWaitMs: number;

  constructor(events: DnsDiscoveryEvents, firstLookupWaitMs = FIRST_LOOKUP_WAIT_MS) {
    this.#events = events;
    this.#firstLookupWaitMs = firstLookupWaitMs;
  }

  /**
   * Makes sure every discovered upstream has a running provider; waits, bounded, for the first
   * answer of those just created, so a new pool goes live with its endpoints when DNS works.
   */
  async prepare(upstreams: readonly UpstreamConfig[]): Promise<void> {
    const fresh: Promise<void>[] = [];
    for (const upstream of upstreams) {
      if (upstream.discovery === null) continue;
      const key = DnsDiscovery.keyOf(upstream.name, upstream.discovery);
      if (this.#providers.has(key)) continue;
      const provider = new DnsDiscovery(upstream.name, upstream.discovery, { events: this.#events });
      this.#providers.set(key, provider);
      provider.start();
      fresh.push(provider.ready());
    }
    if (fresh.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#firstLookupWaitMs);
    });
    await Promise.race([Promise.all(fresh), bound]);
    clearTimeout(timer);
  }

  /** The provider `prepare` made for this upstream. */
  get(upstream: UpstreamConfig): DiscoveryProvider {
    const provider = upstream.discovery === null ? undefined : this.#providers.get(DnsDiscovery.keyOf(upstream.name, upstream.discovery));
    if (provider === undefined) throw new Error(`upstream "${upstream.name}": no discovery provider prepared`);
    return provider;
  }

  /** Stops and forgets every provider the given upstreams (the live snapshot's) do not use. */
  retain(upstreams: readonly UpstreamConfig[]): void {
    this.#providers.retain(upstreams.flatMap((u) => (u.discovery === null ? [] : [DnsDiscovery.keyOf(u.name, u.discovery)])));
  }

  stopAll(): void {
    this.#providers.stopAll();
  }
}
