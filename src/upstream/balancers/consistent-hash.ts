// Consistent hashing by Maglev (Google's Maglev paper, §3.4; Envoy's MAGLEV load balancer): a
// lookup table of M slots (default 65537, a prime) in which every endpoint owns a share of the
// slots in proportion to its weight; a request's key hashes to a slot and the slot names the
// endpoint. The same key goes to the same endpoint for as long as the endpoint list stands, on
// every worker process and every gateway instance (the table depends only on the addresses, the
// weights and M: not on list order, nor on anything random). When the list changes, few keys move.
// Cost per pick: O(key length) to hash the key, one table read; no allocation. A null key costs one
// random draw instead.
// Construction: the table, ~M·ln(M / endpoints) probes plus M·(max weight / mean weight) turn
// checks (the weighted variant's bookkeeping), memory 2 bytes × M (4 past 65535 endpoints): a few
// ms (measured 3–6 ms for 10 endpoints) and 128 KiB per pool per snapshot at the default size,
// and as much again for the subset table once some endpoint is ejected (see below).
//
// The table (Maglev's "population"). Each endpoint has a preference list, the permutation
// (offset + k × skip) mod M of all slots, from two differently-seeded hashes of its address
// (offset in [0, M), skip in [1, M): M prime makes every skip visit every slot). Endpoints take
// turns, in address order, each claiming the first still-free slot of its list, until the table is
// full. Weighted (Envoy's variant): an endpoint of weight w takes a turn in iteration i only while
// its turns so far ≤ i × w / (max weight), so slot counts follow the weights (normalised by the
// largest, which takes a turn every iteration).
//
// Ejected endpoints (a usable subset): the subset table is the full table with only the ejected
// endpoints' slots freed and refilled by the same weighted turns among the usable ones. So an
// ejection moves exactly the ejected endpoints' keys, spread over the others by weight, and a
// restore moves exactly them back (the full table is kept). Envoy instead rebuilds Maglev over the
// healthy hosts, which also moves some other keys (a rebuild without 1 of 10 endpoints moves
// 0.3 % of the rest, measured in the tests). The subset table depends only on
// the subset, not on the order of ejections. It is built on the first pick that sees that subset
// (O(M) plus the refill), then cached, one subset at a time: keyed by the identity of the
// `candidates` array (the pool passes the same array until its usable set changes), with an
// O(candidates) comparison by build position when a new array holds the same subset (a pool that
// rebuilds its usable array without a change costs a comparison, not a rebuild).
//
// The key hash: 32-bit FNV-1a over the key's UTF-16 code units, then murmur3's fmix32 finaliser.
// FNV-1a is a few instructions per character and allocation-free on any JS string, but its low
// bits mix poorly for short, similar keys (IPv4 addresses differing in the last digit); fmix32
// gives full avalanche, so `hash mod M` spreads such keys evenly. It is not cryptographic: a
// client choosing its key can choose its endpoint, which consistent hashing allows anyway.
//
// A null key (the request has no value for the configured hashOn): a random slot, as Envoy hashes
// a request without a hash key with a random number. That is a random endpoint in proportion to
// weight (uniform when weights are equal), with no affinity.

import { GatewayError } from '../../errors.js';
import { EndpointIndex, throwNoCandidates } from './endpoint-index.js';
import type { RandomSource } from './random-source.js';
import { defaultRandom, randomIndex } from './random-source.js';
import type { BalancedEndpoint, Balancer, PickContext } from './types.js';

/** Envoy's default Maglev table size: a prime, ~100 slots per endpoint for a pool of 650. */
export const MAGLEV_TABLE_SIZE = 65537;

// Seeds of the three hashes: the request key, and an address's offset and skip. Any distinct
// values do; changing one remaps every key, so they are fixed.
const KEY_SEED = 0;
const OFFSET_SEED = 0x9e3779b9;
const SKIP_SEED = 0x7f4a7c15;

/**
 * 32-bit FNV-1a over the UTF-16 code units of `text`, its basis xor `seed`, finished with
 * murmur3's fmix32. Unsigned. O(length), no allocation.
 */
export function hash32(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** slot → index of an endpoint (in the list the table was built for), or the sentinel `empty`. */
type Table = Uint16Array | Uint32Array;

export class ConsistentHashBalancer<E extends BalancedEndpoint = BalancedEndpoint> implements Balancer<E> {
  readonly name = 'consistent-hash';
  /** M, the number of slots: a prime greater than or equal to the number of endpoints. */
  readonly tableSize: number;
  readonly #index: EndpointIndex;
  readonly #random: RandomSource;
  /** The free-slot marker: the largest value the table type holds, never an endpoint index. */
  readonly #empty: number;
  /** Each endpoint's first preferred slot and stride, by build position. */
  readonly #offsets: Uint32Array;
  readonly #skips: Uint32Array;
  /** Build positions sorted by address: the turn order, whatever order the list came in. */
  readonly #byAddress: Int32Array;
  /** The table for the full list: slot → build position (= candidate index when all are usable). */
  readonly #full: Table;

  /** The candidates array the subset table was last used for (identity is the fast check). */
  #subsetFor: readonly E[] | null = null;
  /** The subset's size and build positions, by candidate index, to recognise it in a new array. */
  #subsetSize = 0;
  readonly #subsetPositions: Int32Array;
  /** slot → candidate index within that subset; allocated on the first ejection, then reused. */
  #subset: Table | null = null;

  // Scratch for building, by member index (build position, or candidate index for a subset).
  readonly #cursor: Uint32Array;
  readonly #stride: Uint32Array;
  readonly #share: Float64Array;
  readonly #turns: Float64Array;
  readonly #memberOf: Int32Array; // build position → candidate index in the subset, or -1
  readonly #order: Int32Array; // member indexes in turn order

  constructor(endpoints: readonly E[], random: RandomSource = defaultRandom, tableSize = MAGLEV_TABLE_SIZE) {
    const index = new EndpointIndex(this.name, endpoints);
    const size = index.size;
    // Maglev's permutations only cover every slot when M is prime; with a composite M the table
    // build could loop forever. More endpoints than slots would leave some with no slot at all.
    if (!isPrime(tableSize)) {
      throw new GatewayError('GW_ERR_CONFIG_INVALID', [
        `balancer "${this.name}": table size ${String(tableSize)} is not a prime number`,
      ]);
    }
    if (size > tableSize) {
      throw new GatewayError('GW_ERR_CONFIG_INVALID', [
        `balancer "${this.name}": ${String(size)} endpoints do not fit a table of ${String(tableSize)} slots`,
      ]);
    }
    this.tableSize = tableSize;
    this.#index = index;
    this.#random = random;
    const wide = size > 0xffff; // indexes up to 0xfffe leave 0xffff free as the sentinel
    this.#empty = wide ? 0xffffffff : 0xffff;

    this.#offsets = new Uint32Array(size);
    this.#skips = new Uint32Array(size);
    for (let i = 0; i < size; i++) {
      const address = endpoints[i]!.address; // i < size
      this.#offsets[i] = hash32(address, OFFSET_SEED) % tableSize;
      this.#skips[i] = (hash32(address, SKIP_SEED) % (tableSize - 1)) + 1;
    }
    const byAddress = Array.from({ length: size }, (_, i) => i);
    byAddress.sort((a, b) => {
      const x = endpoints[a]!.address;
      const y = endpoints[b]!.address;
      return x < y ? -1 : x > y ? 1 : 0;
    });
    this.#byAddress = Int32Array.from(byAddress);

    this.#subsetPositions = new Int32Array(size);
    this.#cursor = new Uint32Array(size);
    this.#stride = new Uint32Array(size);
    this.#share = new Float64Array(size);
    this.#turns = new Float64Array(size);
    this.#memberOf = new Int32Array(size);
    this.#order = new Int32Array(size);

    // No endpoints (discovery not resolved yet): no table; pick refuses an empty list anyway.
    this.#full = this.#newTable(size > 0 ? tableSize : 0);
    if (size > 0) {
      this.#full.fill(this.#empty);
      for (let i = 0; i < size; i++) {
        this.#setMember(i, i);
        this.#order[i] = this.#byAddress[i]!;
      }
      this.#populate(this.#full, tableSize, size);
    }
  }

  pick(candidates: readonly E[], ctx: PickContext): E {
    const n = candidates.length;
    if (n <= 1) return candidates[0] ?? throwNoCandidates();
    // Everything usable: candidates[i] is endpoint i (pool contract), the full table applies.
    const table = n === this.#index.size ? this.#full : this.#subsetTable(candidates);
    const key = ctx.hashKey;
    const slot = key === null ? randomIndex(this.#random, this.tableSize) : hash32(key, KEY_SEED) % this.tableSize;
    return candidates[table[slot]!]!; // slot < M; every slot holds an index < n
  }

  /** The table for a usable subset: cached, or recognised, or built (see the header). */
  #subsetTable(candidates: readonly E[]): Table {
    const cached = this.#subset;
    if (cached !== null) {
      if (candidates === this.#subsetFor) return cached;
      if (this.#isCachedSubset(candidates)) {
        this.#subsetFor = candidates;
        return cached;
      }
    }
    return this.#buildSubset(candidates);
  }

  #isCachedSubset(candidates: readonly E[]): boolean {
    const n = candidates.length;
    if (n !== this.#subsetSize) return false;
    for (let i = 0; i < n; i++) {
      if (this.#index.positionOf(candidates[i]!, i) !== this.#subsetPositions[i]) return false;
    }
    return true;
  }

  #buildSubset(candidates: readonly E[]): Table {
    const n = candidates.length;
    const size = this.#index.size;
    const M = this.tableSize;
    const empty = this.#empty;
    const memberOf = this.#memberOf;
    // Invalidate first: if positionOf throws below, no half-written subset may be reused.
    this.#subsetFor = null;
    this.#subsetSize = 0;
    memberOf.fill(-1);
    for (let i = 0; i < n; i++) {
      const position = this.#index.positionOf(candidates[i]!, i); // throws for a stranger
      this.#subsetPositions[i] = position;
      memberOf[position] = i;
      this.#setMember(i, position);
    }
    let turn = 0;
    for (let k = 0; k < size; k++) {
      const member = memberOf[this.#byAddress[k]!]!;
      if (member >= 0) this.#order[turn++] = member;
    }

    const table = (this.#subset ??= this.#newTable(M));
    const full = this.#full;
    let free = 0;
    for (let slot = 0; slot < M; slot++) {
      const member = memberOf[full[slot]!]!; // full[slot] < size: the full table is complete
      if (member >= 0) {
        table[slot] = member;
      } else {
        table[slot] = empty;
        free++;
      }
    }
    this.#populate(table, free, n);
    this.#subsetFor = candidates;
    this.#subsetSize = n;
    return table;
  }

  #newTable(length: number): Table {
    return this.#empty === 0xffff ? new Uint16Array(length) : new Uint32Array(length);
  }

  /** Member `member` of the table being built is the endpoint at build position `position`. */
  #setMember(member: number, position: number): void {
    this.#cursor[member] = this.#offsets[position]!;
    this.#stride[member] = this.#skips[position]!;
    this.#share[member] = this.#index.weights[position]!;
    this.#turns[member] = 0;
  }

  /**
   * Maglev's population, weighted as Envoy does: fills the `free` empty slots of `table` with
   * turns among members 0..count-1 (set by #setMember, taken in #order). Each member claims the
   * next free slot along its permutation; one of weight w takes a turn in iteration i only while
   * its turns ≤ i × w / max weight. Ends: the heaviest member takes a turn every iteration and
   * every permutation visits every slot (M prime), so each turn fills a slot.
   */
  #populate(table: Table, free: number, count: number): void {
    if (free === 0 || count === 0) return;
    const M = this.tableSize;
    const empty = this.#empty;
    const cursor = this.#cursor;
    const stride = this.#stride;
    const share = this.#share;
    const turns = this.#turns;
    const order = this.#order;
    let max = 0;
    for (let j = 0; j < count; j++) max = Math.max(max, share[j]!);
    for (let j = 0; j < count; j++) share[j] = share[j]! / max;
    let remaining = free;
    for (let iteration = 1; ; iteration++) {
      for (let k = 0; k < count; k++) {
        const j = order[k]!;
        if (iteration * share[j]! < turns[j]!) continue;
        turns[j] = turns[j]! + 1;
        const step = stride[j]!;
        let c = cursor[j]!;
        while (table[c] !== empty) {
          c += step;
          if (c >= M) c -= M;
        }
        table[c] = j;
        c += step;
        cursor[j] = c >= M ? c - M : c;
        if (--remaining === 0) return;
      }
    }
  }
}
