import type { GatewayError } from '../errors.js';
import type { FilterContext, RequestFilter } from './filter.js';

/**
 * Runs filters in order until one refuses. Stays synchronous until a filter returns a promise, so
 * a route with only synchronous filters (or none) costs no microtask.
 */
export function runFilters(
  filters: readonly RequestFilter[],
  ctx: FilterContext,
): GatewayError | null | Promise<GatewayError | null> {
  for (let i = 0; i < filters.length; i++) {
    const result = filters[i]!.apply(ctx);
    // The last filter's promise is the chain's answer as it is: no async frame around it.
    if (result instanceof Promise) return i === filters.length - 1 ? result : continueAsync(filters, ctx, i, result);
    if (result !== null) return result;
  }
  return null;
}

async function continueAsync(
  filters: readonly RequestFilter[],
  ctx: FilterContext,
  index: number,
  pending: Promise<GatewayError | null>,
): Promise<GatewayError | null> {
  const first = await pending;
  if (first !== null) return first;
  for (let i = index + 1; i < filters.length; i++) {
    const result = await filters[i]!.apply(ctx);
    if (result !== null) return result;
  }
  return null;
}
