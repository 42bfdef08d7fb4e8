// What a RedisStore reports, recorded for assertions: its errors by reason and in detail, its
// up/down transitions, the instance counts it saw and how many calls were answered.
import type { DecisionCounter, RateLimitEvents, StoreFailure } from '../../../plugins/rate-limit/index.js';

export class RecordingEvents implements RateLimitEvents {
  readonly errors = new Map<StoreFailure, number>();
  readonly errorDetails: string[] = [];
  readonly states: { up: boolean; reason: string | null; failureMode: string; at: number }[] = [];
  readonly instanceCounts: number[] = [];
  roundTrips = 0;

  decisionCounter(): DecisionCounter {
    return { inc(): void {} };
  }

  storeRoundTrip(): void {
    this.roundTrips++;
  }

  storeError(reason: StoreFailure, detail: string): void {
    this.errors.set(reason, (this.errors.get(reason) ?? 0) + 1);
    this.errorDetails.push(`${reason}: ${detail}`);
  }

  storeState(up: boolean, reason: string | null, failureMode: string): void {
    this.states.push({ up, reason, failureMode, at: performance.now() });
  }

  instances(count: number): void {
    this.instanceCounts.push(count);
  }

  errorCount(): number {
    let total = 0;
    for (const n of this.errors.values()) total += n;
    return total;
  }
}
