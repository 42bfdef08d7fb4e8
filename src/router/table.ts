// The route table: built once per config snapshot, immutable afterwards, consulted once per request.
//
// Route choice (SPEC §3.2): a route matches when its host (if any), prefix (at a segment boundary),
// methods (if any) and every `match` condition hold. The winner has the most specific host (exact,
// then wildcard — a longer wildcard suffix first — then none), then the longest prefix, then the
// most match conditions, then the lowest file index.
//
// Layout: one bucket per host rule (exact name, wildcard suffix, or none); in each bucket a Map from
// prefix to its routes pre-sorted by (match-condition count desc, index asc). `match` visits the
// buckets in host-specificity order and, in each, the path's segment boundaries from the longest
// prefix to `/`, so the first route whose conditions and method hold is the winner and the search
// stops there. Cost per request: one Map lookup per host bucket that applies (the exact host, each
// wildcard suffix of the host no longer than the longest configured one, the host-less bucket), and
// per bucket one slice + Map lookup per segment boundary whose length some prefix of that bucket
// has (a per-bucket length bitmap skips the others). No regex is compiled, no closure or result
// object allocated on a match: each route's `matched` result is built here, once.

import type { IncomingHttpHeaders } from 'node:http';
import type { HeaderMatch, RouteConfig } from '../config/types.js';
import { GatewayError } from '../errors.js';
import { normalizeHost } from './normalize.js';
import { canonicalPrefix } from './rewrite.js';
import type {
  ConditionCheck,
  HostSpecificity,
  Routable,
  RouteCheck,
  RouteExplanation,
  RouteMatch,
  RouteRequest,
} from './types.js';

/** Longest accepted `match.headers.*.regex` pattern: longer ones are refused when the table is built. */
export const MAX_HEADER_REGEX_LENGTH = 512;
/**
 * A header regex sees at most this many chars of the value. JavaScript regexes backtrack; bounding
 * the input bounds the damage a client can do with a long header against a pattern that
 * backtracks badly (the pattern itself comes from the operator, who is trusted).
 */
export const HEADER_REGEX_INPUT_LIMIT = 8 * 1024;

const HOST_EXACT = 0;
const HOST_WILDCARD = 1;
const HOST_ANY = 2;
type HostKind = typeof HOST_EXACT | typeof HOST_WILDCARD | typeof HOST_ANY;
const SPECIFICITY: readonly HostSpecificity[] = ['exact', 'wildcard', 'any'];

const HM_EXACT = 0;
const HM_PRESENT = 1;
const HM_REGEX = 2;

interface HeaderCondition {
  readonly name: string; // lower-case, as Node keys IncomingHttpHeaders
  readonly kind: typeof HM_EXACT | typeof HM_PRESENT | typeof HM_REGEX;
  readonly value: string; // HM_EXACT only
  readonly regex: RegExp | null; // HM_REGEX only; no g/y flag, so `test` keeps no state
  /**
   * Node's headers object has Object.prototype: `headers.constructor` is a function even when the
   * client sent no such header. Only names found on the prototype pay for an own-property check.
   */
  readonly ownCheck: boolean;
  readonly text: string; // for explain
}

interface QueryCondition {
  readonly name: string;
  readonly value: string;
  readonly text: string; // for explain
}

interface Entry<R extends Routable> {
  readonly route: R;
  readonly config: RouteConfig;
  readonly index: number;
  readonly prefix: string;
  readonly hostKind: HostKind;
  /** Exact: the host name; wildcard: the suffix with its leading dot (`.example.com`); any: null. */
  readonly hostKey: string | null;
  /** null = every method. Includes HEAD when GET is listed. */
  readonly methods: ReadonlySet<string> | null;
  /** `methods` as a sorted list, for 405's Allow; empty when `methods` is null. */
  readonly allow: readonly string[];
  readonly headers: readonly HeaderCondition[];
  readonly query: readonly QueryCondition[];
  readonly conditionCount: number;
  readonly result: RouteMatch<R>;
}

class Bucket<R extends Routable> {
  /** Prefixes other than `/`, each with its routes sorted by (conditionCount desc, index asc). */
  readonly byPrefix = new Map<string, Entry<R>[]>();
  /** Routes with prefix `/`, sorted the same way; null when none. */
  root: Entry<R>[] | null = null;
  /** lengths[n] === 1 when some prefix in `byPrefix` is n chars long. */
  lengths = new Uint8Array(0);
  maxLength = 0;

  add(entry: Entry<R>): void {
    if (entry.prefix === '/') {
      (this.root ??= []).push(entry);
      return;
    }
    let list = this.byPrefix.get(entry.prefix);
    if (list === undefined) this.byPrefix.set(entry.prefix, (list = []));
    list.push(entry);
  }

  seal(): void {
    if (this.root !== null) this.root.sort(byConditionsThenIndex);
    let max = 0;
    for (const [prefix, list] of this.byPrefix) {
      list.sort(byConditionsThenIndex);
      if (prefix.length > max) max = prefix.length;
    }
    this.maxLength = max;
    this.lengths = new Uint8Array(max + 1);
    for (const prefix of this.byPrefix.keys()) this.lengths[prefix.length] = 1;
  }
}

function byConditionsThenIndex<R extends Routable>(a: Entry<R>, b: Entry<R>): number {
  return b.conditionCount - a.conditionCount || a.index - b.index;
}

const NOT_FOUND: RouteMatch<never> = Object.freeze({ kind: 'not_found' });

// RFC 9110 §5.1 token, lower-case only (header names are lower-cased by the loader and by Node).
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
// RFC 9110 §9.1 method token.
const METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

// ---------------------------------------------------------------------------------------------
// Condition evaluation, shared by `match` and `explain` so the two can never disagree.

/**
 * The value a header condition is tested against: the header as Node presents it. A header sent
 * several times arrives joined (`, ` for most, `; ` for cookie; Node keeps only the first copy of
 * singletons such as host or authorization), and `exact` compares with that joined value — so
 * `x-canary: true` sent twice is `true, true` and does not equal `true`. That is Envoy's rule for
 * header matchers, and it means adding a copy of a header can never make an exact match succeed.
 */
function headerValue(headers: IncomingHttpHeaders, cond: HeaderCondition): string | undefined {
  if (cond.ownCheck && !Object.hasOwn(headers, cond.name)) return undefined;
  const raw = headers[cond.name];
  if (raw === undefined || typeof raw === 'string') return raw;
  // Only set-cookie (never sent by clients) is an array in IncomingHttpHeaders.
  return raw.join(', ');
}

function headerHolds(cond: HeaderCondition, value: string | undefined): boolean {
  if (value === undefined) return false;
  if (cond.kind === HM_PRESENT) return true;
  if (cond.kind === HM_EXACT) return value === cond.value;
  return (cond.regex as RegExp).test(
    value.length > HEADER_REGEX_INPUT_LIMIT ? value.slice(0, HEADER_REGEX_INPUT_LIMIT) : value,
  );
}

function decodeQueryComponent(s: string): string {
  // application/x-www-form-urlencoded, as URLSearchParams reads it: `+` is a space.
  const plus = s.indexOf('+') === -1 ? s : s.replace(/\+/g, ' ');
  if (plus.indexOf('%') === -1) return plus;
  try {
    return decodeURIComponent(plus);
  } catch {
    // Malformed escapes or invalid UTF-8: compare the raw text, which no sane condition equals.
    return plus;
  }
}

/**
 * Query parameters, decoded. A parameter given several times counts with its first value (as
 * URLSearchParams.get does); `?flag` and `?flag=` both have the value ''.
 */
export function parseQuery(query: string): ReadonlyMap<string, string> {
  const params = new Map<string, string>();
  const n = query.length;
  let start = 0;
  while (start < n) {
    let amp = query.indexOf('&', start);
    if (amp === -1) amp = n;
    if (amp > start) {
      const eq = query.indexOf('=', start);
      const hasValue = eq !== -1 && eq < amp;
      const name = decodeQueryComponent(query.slice(start, hasValue ? eq : amp));
      if (!params.has(name)) params.set(name, hasValue ? decodeQueryComponent(query.slice(eq + 1, amp)) : '');
    }
    start = amp + 1;
  }
  return params;
}

function prefixHolds(prefix: string, path: string): boolean {
  if (prefix === '/') return true;
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || path.charCodeAt(prefix.length) === 0x2f;
}

function hostHolds(entry: Entry<Routable>, host: string | null): boolean {
  if (entry.hostKind === HOST_ANY) return true;
  if (host === null) return false;
  if (entry.hostKind === HOST_EXACT) return host === entry.hostKey;
  // `.example.com` suffix: `a.example.com` and `a.b.example.com` hold, `example.com` does not.
  return host.endsWith(entry.hostKey as string);
}

// ---------------------------------------------------------------------------------------------
// Building

function configError(field: string, reason: string): GatewayError {
  return new GatewayError('GW_ERR_CONFIG_INVALID', [`${field}: ${reason}`]);
}

function compileHost(host: string | null, where: string): { kind: HostKind; key: string | null } {
  if (host === null) return { kind: HOST_ANY, key: null };
  const field = `${where}.host`;
  const wildcard = host.startsWith('*.');
  const name = wildcard ? host.slice(2) : host;
  if (name.startsWith('[') ? name.indexOf(']:') !== -1 : name.indexOf(':') !== -1) {
    throw configError(field, 'must not include a port (hosts are compared without one)');
  }
  if (wildcard && name.startsWith('[')) throw configError(field, 'a wildcard cannot cover an IP literal');
  let normal: string;
  try {
    normal = normalizeHost(name);
  } catch {
    throw configError(field, `${JSON.stringify(host)} is neither a host name, an IP literal nor *.<domain>`);
  }
  return wildcard ? { kind: HOST_WILDCARD, key: '.' + normal } : { kind: HOST_EXACT, key: normal };
}

function compileMethods(methods: readonly string[] | null, where: string): Set<string> | null {
  if (methods === null) return null;
  if (methods.length === 0) throw configError(`${where}.methods`, 'empty list (omit `methods` to allow every method)');
  const set = new Set<string>();
  for (const m of methods) {
    if (!METHOD.test(m)) throw configError(`${where}.methods`, `${JSON.stringify(m)} is not a method name`);
    set.add(m.toUpperCase());
  }
  // HTTP semantics (RFC 9110 §9.3.2): HEAD is GET without the body, so a route serving GET
  // serves HEAD too — which is also what every origin server does.
  if (set.has('GET')) set.add('HEAD');
  return set;
}

function compileHeaderCondition(rawName: string, match: HeaderMatch, where: string): HeaderCondition {
  const name = rawName.toLowerCase();
  const field = `${where}.match.headers.${rawName}`;
  if (!HEADER_NAME.test(name)) throw configError(field, 'not a header name');
  const ownCheck = name in Object.prototype;
  switch (match.kind) {
    case 'exact':
      return {
        name,
        kind: HM_EXACT,
        value: match.value,
        regex: null,
        ownCheck,
        text: `header ${name} = ${JSON.stringify(match.value)}`,
      };
    case 'present':
      return { name, kind: HM_PRESENT, value: '', regex: null, ownCheck, text: `header ${name} present` };
    case 'regex': {
      if (match.pattern.length > MAX_HEADER_REGEX_LENGTH) {
        throw configError(`${field}.regex`, `pattern longer than ${MAX_HEADER_REGEX_LENGTH} characters`);
      }
      let regex: RegExp;
      try {
        // JavaScript syntax, no flags, and a search, not a full match (`^v2` means "starts with
        // v2", as the SPEC's example reads): anchors are the operator's to write. No `g`/`y`, so
        // the compiled object is stateless and shared by every request.
        regex = new RegExp(match.pattern);
      } catch (err) {
        throw configError(`${field}.regex`, `invalid regular expression: ${(err as Error).message}`);
      }
      return { name, kind: HM_REGEX, value: '', regex, ownCheck, text: `header ${name} ~ /${match.pattern}/` };
    }
  }
}

function compileEntry<R extends Routable>(route: R): Entry<R> {
  const config = route.config;
  const where = `routes[${config.index}]`;
  const host = compileHost(config.host, where);
  const methods = compileMethods(config.methods, where);
  const headers: HeaderCondition[] = [];
  const query: QueryCondition[] = [];
  if (config.match !== null) {
    for (const [name, m] of Object.entries(config.match.headers)) headers.push(compileHeaderCondition(name, m, where));
    for (const [name, value] of Object.entries(config.match.query)) {
      if (name.length === 0) throw configError(`${where}.match.query`, 'empty parameter name');
      query.push({ name, value, text: `query ${name} = ${JSON.stringify(value)}` });
    }
  }
  return {
    route,
    config,
    index: config.index,
    prefix: canonicalPrefix(config.prefix, `${where}.prefix`),
    hostKind: host.kind,
    hostKey: host.key,
    methods,
    allow: methods === null ? [] : Object.freeze([...methods].sort()),
    headers,
    query,
    conditionCount: headers.length + query.length,
    result: Object.freeze({ kind: 'matched', route }),
  };
}

/** Orders matching routes by the route-choice rules: the first one wins. */
function byPrecedence(a: Entry<Routable>, b: Entry<Routable>): number {
  return (
    a.hostKind - b.hostKind ||
    (a.hostKind === HOST_WILDCARD ? (b.hostKey as string).length - (a.hostKey as string).length : 0) ||
    b.prefix.length - a.prefix.length ||
    b.conditionCount - a.conditionCount ||
    a.index - b.index
  );
}

// ---------------------------------------------------------------------------------------------

/**
 * Routes requests to the routes of one config snapshot. Build it once per snapshot (the
 * constructor validates the routing fields and throws GW_ERR_CONFIG_INVALID naming the field);
 * it never changes afterwards. Not shared between threads (each worker builds its own).
 */
export class RouteTable<R extends Routable> {
  /** The routes, in file order. */
  readonly routes: readonly R[];
  readonly #entries: readonly Entry<R>[]; // file order
  readonly #exact = new Map<string, Bucket<R>>();
  readonly #wildcard = new Map<string, Bucket<R>>(); // keyed by suffix with its leading dot
  readonly #maxWildcardSuffix: number;
  readonly #any: Bucket<R> | null;

  // Per-lookup scratch. `match` is synchronous and calls no user code, so one table can keep this
  // state in fields instead of allocating it per request.
  #methodMismatch = false;
  // The last query string parsed and its parameters. Parsing is a pure function of the string, so
  // reusing it across requests is safe, and it makes "parse at most once per request" free.
  #querySource: string | null = null;
  #queryParams: ReadonlyMap<string, string> = new Map();

  constructor(routes: readonly R[]) {
    const entries = routes.map((r) => compileEntry(r)).sort((a, b) => a.index - b.index);
    for (let i = 1; i < entries.length; i++) {
      const e = entries[i] as Entry<R>;
      if ((entries[i - 1] as Entry<R>).index === e.index) {
        throw configError(`routes[${e.index}]`, `two routes share index ${e.index}`);
      }
    }
    this.#entries = entries;
    this.routes = Object.freeze(entries.map((e) => e.route));

    let any: Bucket<R> | null = null;
    let maxSuffix = 0;
    for (const e of entries) {
      let bucket: Bucket<R> | undefined;
      if (e.hostKind === HOST_ANY) {
        bucket = any ??= new Bucket<R>();
      } else {
        const map = e.hostKind === HOST_EXACT ? this.#exact : this.#wildcard;
        const key = e.hostKey as string;
        bucket = map.get(key);
        if (bucket === undefined) map.set(key, (bucket = new Bucket<R>()));
        if (e.hostKind === HOST_WILDCARD && key.length > maxSuffix) maxSuffix = key.length;
      }
      bucket.add(e);
    }
    for (const b of this.#exact.values()) b.seal();
    for (const b of this.#wildcard.values()) b.seal();
    any?.seal();
    this.#any = any;
    this.#maxWildcardSuffix = maxSuffix;
  }

  /**
   * The route for a request whose host and path were normalised (normalizeHost, normalizePath):
   * `matched`, or `method_not_allowed` with the sorted Allow list when routes exist for the host
   * and path (their match conditions holding) but none for the method, or `not_found`.
   */
  match(req: RouteRequest): RouteMatch<R> {
    this.#methodMismatch = false;
    const found = this.#find(req);
    if (found !== null) return found.result;
    if (!this.#methodMismatch) return NOT_FOUND;
    return Object.freeze({ kind: 'method_not_allowed', allow: this.#allowFor(req) });
  }

  #find(req: RouteRequest): Entry<R> | null {
    const host = req.host;
    if (host !== null) {
      if (this.#exact.size !== 0) {
        const bucket = this.#exact.get(host);
        if (bucket !== undefined) {
          const e = this.#search(bucket, req);
          if (e !== null) return e;
        }
      }
      if (this.#wildcard.size !== 0) {
        // Suffixes from the longest (first dot) to the shortest, starting at the first dot that
        // leaves a suffix no longer than the longest wildcard: longer ones cannot be keys.
        let dot = host.indexOf('.', host.length - this.#maxWildcardSuffix);
        while (dot !== -1) {
          const bucket = this.#wildcard.get(host.slice(dot));
          if (bucket !== undefined) {
            const e = this.#search(bucket, req);
            if (e !== null) return e;
          }
          dot = host.indexOf('.', dot + 1);
        }
      }
    }
    return this.#any === null ? null : this.#search(this.#any, req);
  }

  /** Longest prefix first: every segment boundary of the path, then `/`. */
  #search(bucket: Bucket<R>, req: RouteRequest): Entry<R> | null {
    const path = req.path;
    const lengths = bucket.lengths;
    let end = path.length;
    if (end > bucket.maxLength) end = path.lastIndexOf('/', bucket.maxLength);
    while (end > 1) {
      if (lengths[end] === 1) {
        const list = bucket.byPrefix.get(end === path.length ? path : path.slice(0, end));
        if (list !== undefined) {
          const e = this.#pick(list, req);
          if (e !== null) return e;
        }
      }
      end = path.lastIndexOf('/', end - 1);
    }
    return bucket.root === null ? null : this.#pick(bucket.root, req);
  }

  /** The first route of a same-prefix list (already in precedence order) that fully holds. */
  #pick(list: readonly Entry<R>[], req: RouteRequest): Entry<R> | null {
    const method = req.method;
    for (let i = 0; i < list.length; i++) {
      const e = list[i] as Entry<R>;
      if (e.methods === null || e.methods.has(method)) {
        if (this.#conditionsHold(e, req)) return e;
      } else if (!this.#methodMismatch && this.#conditionsHold(e, req)) {
        // Only whether a 405 is possible is recorded here; its Allow list is computed on that
        // (rare) path, so the common path allocates nothing.
        this.#methodMismatch = true;
      }
    }
    return null;
  }

  #conditionsHold(e: Entry<R>, req: RouteRequest): boolean {
    if (e.conditionCount === 0) return true;
    const hs = e.headers;
    for (let i = 0; i < hs.length; i++) {
      const c = hs[i] as HeaderCondition;
      if (!headerHolds(c, headerValue(req.headers, c))) return false;
    }
    const qs = e.query;
    if (qs.length === 0) return true;
    const params = this.#params(req.query);
    for (let i = 0; i < qs.length; i++) {
      const c = qs[i] as QueryCondition;
      if (params.get(c.name) !== c.value) return false;
    }
    return true;
  }

  #params(query: string): ReadonlyMap<string, string> {
    if (query !== this.#querySource) {
      this.#queryParams = parseQuery(query);
      this.#querySource = query;
    }
    return this.#queryParams;
  }

  /** 405 path only: the union of the methods of every route that holds but for the method. */
  #allowFor(req: RouteRequest): readonly string[] {
    const allow = new Set<string>();
    for (const e of this.#entries) {
      if (hostHolds(e, req.host) && prefixHolds(e.prefix, req.path) && this.#conditionsHold(e, req)) {
        for (const m of e.allow) allow.add(m);
      }
    }
    return Object.freeze([...allow].sort());
  }

  /**
   * For `gateway explain`: every route's rules evaluated against the request, in file order, the
   * decision (exactly `match`'s) and why. Walks every route; not for the request path.
   */
  explain(req: RouteRequest): RouteExplanation<R> {
    const result = this.match(req);
    const checks: RouteCheck[] = [];
    const matching: Entry<R>[] = [];
    const failedConditions: Entry<R>[] = [];
    const wrongMethod: Entry<R>[] = [];
    const params = parseQuery(req.query);

    for (const e of this.#entries) {
      const host = hostHolds(e, req.host);
      const prefix = prefixHolds(e.prefix, req.path);
      const methods = e.methods === null || e.methods.has(req.method);
      const conditions: ConditionCheck[] = [];
      for (const c of e.headers) {
        const actual = headerValue(req.headers, c);
        const held = headerHolds(c, actual);
        conditions.push({ source: 'header', name: c.name, text: c.text, actual: actual ?? null, held });
      }
      for (const c of e.query) {
        const actual = params.get(c.name);
        const held = actual === c.value;
        conditions.push({ source: 'query', name: c.name, text: c.text, actual: actual ?? null, held });
      }
      const conditionsHeld = conditions.every((c) => c.held);
      const candidate = host && prefix && conditionsHeld;
      checks.push({
        name: e.config.name,
        index: e.index,
        host: { rule: e.config.host, specificity: SPECIFICITY[e.hostKind] as HostSpecificity, held: host },
        prefix: { rule: e.prefix, held: prefix },
        methods: { rule: e.config.methods, held: methods },
        conditions,
        candidate,
        matched: candidate && methods,
      });
      if (candidate && methods) matching.push(e);
      else if (candidate) wrongMethod.push(e);
      else if (host && prefix) failedConditions.push(e);
    }

    const request = { method: req.method, host: req.host, path: req.path, query: req.query };
    if (result.kind === 'matched') {
      const winner = this.#entries.find((e) => e.route === result.route) as Entry<R>;
      const rivals = matching.filter((e) => e !== winner).sort(byPrecedence);
      const reason = winReason(winner, rivals[0]);
      return { request, routes: checks, result, winner: winner.config.name, reason };
    }
    const hostText = req.host === null ? '(none)' : JSON.stringify(req.host);
    const target = `host ${hostText} and path ${JSON.stringify(req.path)}`;
    if (result.kind === 'method_not_allowed') {
      const names = wrongMethod.map((e) => JSON.stringify(e.config.name)).join(', ');
      const routes = wrongMethod.length === 1 ? 'route' : 'routes';
      const reason =
        `${routes} ${names} match ${target} but not method ${req.method}; Allow: ${result.allow.join(', ')}`;
      return { request, routes: checks, result, winner: null, reason };
    }
    let reason = `no route matches ${target}`;
    if (failedConditions.length > 0) {
      const names = failedConditions.map((e) => JSON.stringify(e.config.name)).join(', ');
      const their = failedConditions.length === 1 ? 'its' : 'their';
      reason += `; ${names} matched host and path but ${their} match conditions failed`;
    }
    return { request, routes: checks, result, winner: null, reason };
  }
}

function describeHost(e: Entry<Routable>): string {
  if (e.hostKind === HOST_ANY) return 'no host rule';
  return `${e.hostKind === HOST_EXACT ? 'exact host' : 'wildcard host'} ${JSON.stringify(e.config.host)}`;
}

/** The rule that put `winner` ahead of the best other matching route. */
function winReason(winner: Entry<Routable>, runnerUp: Entry<Routable> | undefined): string {
  const name = JSON.stringify(winner.config.name);
  if (runnerUp === undefined) {
    return `${name} is the only route whose host, prefix, methods and match conditions all hold`;
  }
  const other = JSON.stringify(runnerUp.config.name);
  if (winner.hostKind !== runnerUp.hostKind) {
    return `${name} wins on host specificity: ${describeHost(winner)} beats ${other}'s ${describeHost(runnerUp)}`;
  }
  if (winner.hostKind === HOST_WILDCARD && winner.hostKey !== runnerUp.hostKey) {
    const mine = JSON.stringify(winner.config.host);
    const theirs = JSON.stringify(runnerUp.config.host);
    return `${name} wins on host specificity: wildcard ${mine} is longer than ${other}'s ${theirs}`;
  }
  if (winner.prefix.length !== runnerUp.prefix.length) {
    const mine = JSON.stringify(winner.prefix);
    return `${name} wins on prefix length: ${mine} is longer than ${other}'s ${JSON.stringify(runnerUp.prefix)}`;
  }
  if (winner.conditionCount !== runnerUp.conditionCount) {
    return `${name} wins on match conditions: ${winner.conditionCount} against ${other}'s ${runnerUp.conditionCount}`;
  }
  return `${name} wins on file order: index ${winner.index} comes before ${other}'s ${runnerUp.index}`;
}
