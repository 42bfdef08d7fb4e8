// Compiled config is shared by every request and every snapshot built from it; freezing it deeply
// turns an accidental write from a silent cross-request bug into an immediate TypeError.

/** Freezes `value` and everything reachable from it; returns the same object. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Reflect.ownKeys(value)) deepFreeze((value as Record<PropertyKey, unknown>)[key]);
  }
  return value;
}
