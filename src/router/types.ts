import type { IncomingHttpHeaders } from 'node:http';
import type { RouteConfig } from '../config/types.js';

/** Anything the route table can hold: it only reads the routing fields of the config. */
export interface Routable {
  readonly config: RouteConfig;
}

/** What the router needs to know about one request; built once per request by the proxy. */
export interface RouteRequest {
  readonly method: string; // upper-case, as received
  readonly host: string | null; // normalised (see normalizeHost); null when the request named none
  readonly path: string; // normalised (see normalizePath)
  readonly query: string; // raw query string without '?', '' when none
  readonly headers: IncomingHttpHeaders;
}

export type RouteMatch<R extends Routable> =
  | { readonly kind: 'matched'; readonly route: R }
  | { readonly kind: 'method_not_allowed'; readonly allow: readonly string[] }
  | { readonly kind: 'not_found' };

/** How specific a route's host rule is; the first tie-breaker of route choice. */
export type HostSpecificity = 'exact' | 'wildcard' | 'any';

/** One `match` condition of a route, evaluated against one request (`gateway explain`). */
export interface ConditionCheck {
  readonly source: 'header' | 'query';
  /** Header name (lower-case) or query parameter name. */
  readonly name: string;
  /** The condition as an operator would read it, e.g. `header x-canary = "true"`. */
  readonly text: string;
  /** The value the request carried (header as Node joined it, query parameter decoded); null when absent. */
  readonly actual: string | null;
  readonly held: boolean;
}

/** Every routing rule of one route, evaluated against one request (`gateway explain`). */
export interface RouteCheck {
  readonly name: string;
  readonly index: number;
  readonly host: { readonly rule: string | null; readonly specificity: HostSpecificity; readonly held: boolean };
  readonly prefix: { readonly rule: string; readonly held: boolean };
  /** `rule` is the configured list (null = every method); `held` counts HEAD as allowed by GET. */
  readonly methods: { readonly rule: readonly string[] | null; readonly held: boolean };
  readonly conditions: readonly ConditionCheck[];
  /** Host, prefix and every condition held: the route is a candidate, whatever the method. */
  readonly candidate: boolean;
  /** Candidate and the method held: the route could have won. */
  readonly matched: boolean;
}

/** What `RouteTable.explain` reports: every route's rules, and the decision with its reason. */
export interface RouteExplanation<R extends Routable> {
  readonly request: {
    readonly method: string;
    readonly host: string | null;
    readonly path: string;
    readonly query: string;
  };
  /** Every route, in file order. */
  readonly routes: readonly RouteCheck[];
  /** Exactly what `RouteTable.match` returns for the same request. */
  readonly result: RouteMatch<R>;
  /** Name of the winning route, null when none won. */
  readonly winner: string | null;
  /** One sentence: why this route won (the deciding rule against the runner-up), or why none did. */
  readonly reason: string;
}
