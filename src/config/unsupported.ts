// Features this version validates but does not implement yet. A config that uses one is refused,
// at the field that uses it, rather than accepted and silently ignored. When a feature lands, its
// row is deleted here (and from the list in docs/configuration.md, which a test keeps in step).

import type { GatewayFile, RoutesFile, RouteEntry } from './schema.js';
import type { FieldPath } from './source.js';

export type UnsupportedFeature =
  | { readonly file: 'gateway'; readonly feature: string; readonly find: (raw: GatewayFile) => FieldPath[] }
  | { readonly file: 'routes'; readonly feature: string; readonly find: (raw: RoutesFile) => FieldPath[] };

function inRoutes(raw: RoutesFile, uses: (route: RouteEntry) => string | null): FieldPath[] {
  return raw.routes.flatMap((route, i) => {
    const field = uses(route);
    return field === null ? [] : [['routes', i, field]];
  });
}


export const UNSUPPORTED_FEATURES: readonly UnsupportedFeature[] = [
  { file: 'routes', feature: 'matching on headers and query (match)', find: (r) => inRoutes(r, (route) => (route.match ? 'match' : null)) },
  { file: 'routes', feature: 'traffic splitting (split)', find: (r) => inRoutes(r, (route) => (route.split ? 'split' : null)) },
  { file: 'routes', feature: 'request mirroring (mirror)', find: (r) => inRoutes(r, (route) => (route.mirror ? 'mirror' : null)) },
  { file: 'routes', feature: 'header rewriting (headers)', find: (r) => inRoutes(r, (route) => (route.headers ? 'headers' : null)) },
  { file: 'routes', feature: 'CORS (cors)', find: (r) => inRoutes(r, (route) => (route.cors ? 'cors' : null)) },
  { file: 'routes', feature: 'fault injection (fault)', find: (r) => inRoutes(r, (route) => (route.fault ? 'fault' : null)) },
];

export interface UnsupportedUse {
  readonly path: FieldPath;
  readonly message: string;
}

export function unsupportedMessage(feature: string): string {
  return `${feature} is not supported yet in this version`;
}

export function findUnsupportedInGateway(raw: GatewayFile): UnsupportedUse[] {
  return UNSUPPORTED_FEATURES.flatMap((entry) =>
    entry.file === 'gateway' ? entry.find(raw).map((path) => ({ path, message: unsupportedMessage(entry.feature) })) : [],
  );
}

export function findUnsupportedInRoutes(raw: RoutesFile): UnsupportedUse[] {
  return UNSUPPORTED_FEATURES.flatMap((entry) =>
    entry.file === 'routes' ? entry.find(raw).map((path) => ({ path, message: unsupportedMessage(entry.feature) })) : [],
  );
}
