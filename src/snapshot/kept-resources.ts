/**
 * Background resources that outlive a snapshot (DNS lookups, JWKS fetchers): one per identity key,
 * kept across reloads while a live configuration still names that identity, so a reload neither
 * starts from nothing nor repeats work already done. Anything the live configuration no longer
 * names is stopped and forgotten by `retain`.
 */
export class KeptResources<R extends { stop(): void }> {
  readonly #items = new Map<string, R>();

  get(key: string): R | undefined {
    return this.#items.get(key);
  }

  has(key: string): boolean {
    return this.#items.has(key);
  }

  set(key: string, resource: R): void {
    this.#items.set(key, resource);
  }

  /** Stops and forgets every resource whose key is not in `keys`. */
  retain(keys: Iterable<string>): void {
    const used = new Set(keys);
    for (const [key, resource] of this.#items) {
      if (used.has(key)) continue;
      resource.stop();
      this.#items.delete(key);
    }
  }

  stopAll(): void {
    this.retain([]);
  }
}
