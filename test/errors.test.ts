import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, GatewayError, type ErrorCode } from '../src/errors.js';

// docs/errors.md is what operators read; it must list exactly the catalogue, with the same
// statuses and public codes.
const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
const documented = new Map<string, { status: string; publicCode: string }>();
for (const line of doc.split('\n')) {
  const m = /^\| (GW_ERR_[A-Z_]+) \| ([0-9-]+) \| ([a-z_-]+) \|/.exec(line);
  if (m) documented.set(m[1]!, { status: m[2]!, publicCode: m[3]! });
}

describe('error catalogue', () => {
  it('documents every error, and nothing else', () => {
    expect([...documented.keys()].sort()).toEqual(Object.keys(ERROR_CATALOGUE).sort());
  });

  it.each(Object.entries(ERROR_CATALOGUE))('%s has the documented status and public code', (code, spec) => {
    const row = documented.get(code)!;
    if (spec.publicCode === null) {
      expect(row).toEqual({ status: '-', publicCode: '-' });
    } else {
      expect(row).toEqual({ status: String(spec.status), publicCode: spec.publicCode });
    }
  });

  it('uses the codes SPEC §4 names for client errors', () => {
    const publicCodes = new Set(Object.values(ERROR_CATALOGUE).map((s) => s.publicCode).filter((c) => c !== null));
    for (const c of ['route_not_found', 'method_not_allowed', 'unauthorized', 'forbidden', 'rate_limited',
      'ratelimit_unavailable', 'bad_gateway', 'upstream_unavailable', 'gateway_timeout', 'fault_injected',
      'payload_too_large', 'headers_too_large', 'bad_request']) {
      expect(publicCodes).toContain(c);
    }
  });

  it('fills message templates and keeps a stable code', () => {
    const err = new GatewayError('GW_ERR_ROUTE_METHOD_NOT_ALLOWED', ['DELETE']);
    expect(err.code satisfies ErrorCode).toBe('GW_ERR_ROUTE_METHOD_NOT_ALLOWED');
    expect(err.status).toBe(405);
    expect(err.publicCode).toBe('method_not_allowed');
    expect(err.message).toBe('method DELETE is not allowed on this route');
  });
});
