// The power of two choices (Mitzenmacher), shared by least-request and peak-ewma: draw two
// distinct candidates uniformly and let the algorithm compare them. Cost of the draw: at most two
// random numbers, no allocation; the comparison is the subclass's.

import { throwNoCandidates } from './endpoint-index.js';
import type { RandomSource } from './random-source.js';
import { randomIndex } from './random-source.js';
import type { BalancedEndpoint, Balancer, PickContext } from './types.js';

export abstract class TwoChoicesBalancer<E extends BalancedEndpoint> implements Balancer<E> {
  abstract readonly name: string;
  protected readonly random: RandomSource;

  protected constructor(random: RandomSource) {
    this.random = random;
  }

  pick(candidates: readonly E[], _ctx?: PickContext): E {
    const n = candidates.length;
    if (n <= 1) return candidates[0] ?? throwNoCandidates();
    // Both are "the two choices": no draw needed unless they tie.
    if (n === 2) return this.choose(candidates[0]!, candidates[1]!);
    // Two distinct indexes, uniformly: draw the second from the n - 1 others by skipping over the
    // first. (Drawing twice from n could compare an endpoint with itself and let the most loaded
    // one win.)
    const i = randomIndex(this.random, n);
    let j = randomIndex(this.random, n - 1);
    if (j >= i) j++;
    return this.choose(candidates[i]!, candidates[j]!); // i, j < n, i !== j
  }

  /** The better of two distinct candidates; ties must not always favour the same side. */
  protected abstract choose(a: E, b: E): E;

  /** A tie split at random in proportion to weight (evenly for equal weights). */
  protected splitTie(a: E, b: E): E {
    return this.random() * (a.weight + b.weight) < a.weight ? a : b;
  }
}
