import type { TargetConfig } from '../../config/types.js';

/**
 * Where a pool's endpoints come from. A provider always hands over the whole current set, never a
 * diff (Traefik's rule), and keeps the last good set when a lookup fails.
 */
export interface DiscoveryProvider {
  /** The endpoints known now. */
  current(): readonly TargetConfig[];
  /** Called with the whole new set whenever it changes. */
  onChange(listener: (targets: readonly TargetConfig[]) => void): void;
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

  onChange(): void {}
  start(): void {}
  stop(): void {}
}
