// The version of a routes config is a hash of what it means, not of how it is written: comments,
// whitespace, key order, and environment references that give the same values hash the same,
// because the hash is taken over the compiled (defaults applied, units read) config.

import { createHash } from 'node:crypto';
import type { RoutesConfig } from './types.js';

/** JSON with object keys sorted at every level; arrays keep their order (it is meaningful). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** First 12 hex digits of the sha256 of the canonical effective routes config (its `file` left out). */
export function configVersion(routes: RoutesConfig): string {
  const { file: _file, ...meaning } = routes;
  return createHash('sha256').update(canonicalJson(meaning)).digest('hex').slice(0, 12);
}
