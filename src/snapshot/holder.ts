import type { Snapshot } from './snapshot.js';

/**
 * The one reference every request reads. A reload replaces it with a single assignment (Traefik's
 * handler switcher): there is never a moment with a half-built snapshot visible.
 */
export class SnapshotHolder {
  #current: Snapshot | null = null;

  get current(): Snapshot | null {
    return this.#current;
  }

  swap(next: Snapshot): Snapshot | null {
    const previous = this.#current;
    this.#current = next;
    return previous;
  }
}
