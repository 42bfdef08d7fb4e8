import type { TargetConfig } from '../../config/types.js';

/**
 * Where a pool's endpoints come from. A provider always hands over the whole current set, never a
 * diff (Traefik's rule), and keeps the last good set when a lookup fails.
 *
 * One provider may outlive the snapshot that created it (the gateway keeps a DNS provider alive
 * across reloads while its identity is unchanged), so listeners unsubscribe rather than die with it.
 */
export interface DiscoveryProvider {
  /** The endpoints known now: the last good set, empty before the first one. */
  current(): readonly TargetConfig[];
  /**
   * Calls `listener` with the whole new set whenever it changes (as a set: order never counts).
   * Returns the function that unsubscribes it.
   */
  onChange(listener: (targets: readonly TargetConfig[]) => void): () => void;
  /**
   * Settles once the first lookup has (success or failure), or when stopped first; never rejects.
   * The gateway awaits it, under its own bound, before a snapshot using a new provider goes live.
   */
  ready(): Promise<void>;
  start(): void;
  stop(): void;
}

/** `targets:` in the routes file: a fixed list that never changes during a snapshot. */
export class StaticDiscovery implements DiscoveryProvider {
  readonly #targets: readonly TargetConfig[];

  constructor(targets: readonly TargetConfig[]) {
    this.#targets = targets;
  }

  current(): readonly TargetConfig[] {
    return this.#targets;
  }

  onChange(_listener: (targets: readonly TargetConfig[]) => void): () => void {
    return () => {};
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  start(): void {}
  stop(): void {}
}
