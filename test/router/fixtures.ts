// Builders for router tests: a RouteConfig with every non-routing field at its default, so each
// test spells out only the fields route choice reads.

import type { HeaderMatch, RouteConfig } from '../../src/config/types.js';
import { RouteTable } from '../../src/router/table.js';
import type { Routable, RouteMatch, RouteRequest } from '../../src/router/types.js';

export type RouteSpec = Partial<RouteConfig> & { readonly name: string };

export interface TestRoute extends Routable {
  readonly config: RouteConfig;
}

export function routeConfig(spec: RouteSpec): RouteConfig {
  return {
    index: 0,
    prefix: '/',
    host: null,
    methods: null,
    match: null,
    upstream: 'default',
    split: null,
    stripPrefix: false,
    rewritePrefix: null,
    auth: null,
    rateLimit: [],
    websocket: false,
    timeouts: { requestMs: null },
    mirror: null,
    headers: { request: null, response: null },
    cors: null,
    fault: null,
    ...spec,
  };
}

/** A table over routes given in file order; `index` is the position unless the spec sets it. */
export function buildTable(specs: readonly RouteSpec[]): RouteTable<TestRoute> {
  return new RouteTable(specs.map((s, i) => ({ config: routeConfig({ index: i, ...s }) })));
}

/** `match` conditions: header and query entries. */
export function when(m: {
  headers?: Record<string, HeaderMatch>;
  query?: Record<string, string>;
}): RouteConfig['match'] {
  return { headers: m.headers ?? {}, query: m.query ?? {} };
}

export const exact = (value: string): HeaderMatch => ({ kind: 'exact', value });
export const present: HeaderMatch = { kind: 'present' };
export const regex = (pattern: string): HeaderMatch => ({ kind: 'regex', pattern });

export function request(r: Partial<RouteRequest> = {}): RouteRequest {
  return { method: 'GET', host: null, path: '/', query: '', headers: {}, ...r };
}

/** The winning route's name, or the outcome's kind; checks `explain` reaches the same decision. */
export function outcome(table: RouteTable<TestRoute>, r: RouteRequest): string {
  const result = table.match(r);
  const explained = table.explain(r);
  if (!sameResult(result, explained.result)) {
    throw new Error(`explain disagrees with match: ${JSON.stringify(explained.result)} vs ${JSON.stringify(result)}`);
  }
  return result.kind === 'matched' ? result.route.config.name : result.kind;
}

function sameResult(a: RouteMatch<TestRoute>, b: RouteMatch<TestRoute>): boolean {
  if (a.kind === 'matched') return b.kind === 'matched' && a.route === b.route;
  if (a.kind === 'method_not_allowed') return b.kind === 'method_not_allowed' && a.allow.join() === b.allow.join();
  return b.kind === 'not_found';
}
