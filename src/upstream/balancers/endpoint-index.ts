// What every balancer precomputes, once, about the endpoints it was built with: their build
// positions (keyed by address), their weights, and whether those weights are all equal. Building
// it validates the endpoints, so a bad weight or a duplicate address fails when the snapshot is
// compiled, never on a request. Cost: O(endpoints) time and memory at construction; lookups O(1).

import { GatewayError } from '../../errors.js';
import type { BalancedEndpoint } from './types.js';

export class EndpointIndex {
  /** Number of endpoints the balancer was built with: the bound of every per-endpoint state. */
  readonly size: number;
  /** Weight of each endpoint, by build position. */
  readonly weights: Float64Array;
  readonly totalWeight: number;
  /** True when every weight is the same (or there are none): weighted algorithms may go uniform. */
  readonly uniformWeights: boolean;
  readonly #balancer: string;
  readonly #endpoints: readonly BalancedEndpoint[];
  readonly #positions: Map<string, number>;
  /**
   * The position last found for `candidates[i]`, by i. The usable set changes rarely, so the same
   * endpoint is usually at the same index of `candidates` pick after pick: checking the guess is
   * one array read and one reference comparison, against a Map lookup.
   */
  readonly #guesses: Int32Array;

  constructor(balancer: string, endpoints: readonly BalancedEndpoint[]) {
    this.#balancer = balancer;
    this.#endpoints = endpoints;
    this.size = endpoints.length;
    this.weights = new Float64Array(endpoints.length);
    this.#positions = new Map();
    this.#guesses = new Int32Array(endpoints.length).fill(-1);
    let total = 0;
    let uniform = true;
    for (let i = 0; i < endpoints.length; i++) {
      const endpoint = endpoints[i]!; // i < length
      const { address, weight } = endpoint;
      // Weights must be positive: a zero weight would make smooth WRR's total 0 (it would then
      // repeat one endpoint forever) and a weighted draw impossible. Envoy and nginx require ≥ 1.
      if (!Number.isFinite(weight) || weight <= 0) {
        throw new GatewayError('GW_ERR_CONFIG_INVALID', [
          `balancer "${balancer}": endpoint ${address} has weight ${String(weight)}; weights must be finite numbers > 0`,
        ]);
      }
      // Per-endpoint state is keyed by address: two endpoints with one address would share it.
      if (this.#positions.has(address)) {
        throw new GatewayError('GW_ERR_CONFIG_INVALID', [
          `balancer "${balancer}": endpoint ${address} is listed more than once`,
        ]);
      }
      this.#positions.set(address, i);
      this.weights[i] = weight;
      total += weight;
      if (weight !== endpoints[0]!.weight) uniform = false;
    }
    this.totalWeight = total;
    this.uniformWeights = uniform;
  }

  /**
   * Build position of `candidate`, found at index `i` of the candidate list. O(1) and no
   * allocation: the last position seen at `i`, confirmed by identity, else one Map lookup (V8
   * caches string hashes). Callers skip it altogether when `candidates.length === size`, because
   * the pool's contract (a subset, same relative order, distinct addresses) then makes
   * `candidates[i]` endpoint `i`.
   *
   * An endpoint this balancer was not built with breaks that contract (a pool bug, not a request
   * problem): it fails loudly rather than letting per-endpoint state silently alias.
   */
  positionOf(candidate: BalancedEndpoint, i: number): number {
    const guess = this.#guesses[i];
    if (guess !== undefined && guess >= 0 && this.#endpoints[guess] === candidate) return guess;
    const position = this.#positions.get(candidate.address);
    if (position === undefined) {
      throw new GatewayError('GW_ERR_INTERNAL', [], {
        cause: new Error(
          `balancer "${this.#balancer}" was asked to pick ${candidate.address}, which it was not built with`,
        ),
      });
    }
    this.#guesses[i] = position; // ignored when i ≥ size (only a broken caller gets there)
    return position;
  }
}

/**
 * For an empty candidate list. The pool answers 503 without asking a balancer when nothing is
 * usable, so reaching this is a caller bug; it still maps to the honest client answer.
 */
export function throwNoCandidates(): never {
  throw new GatewayError('GW_ERR_UPSTREAM_UNAVAILABLE');
}
