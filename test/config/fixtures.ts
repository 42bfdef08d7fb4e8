import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, expect } from 'vitest';
import { ConfigError, formatConfigIssue, type ConfigIssue } from '../../src/errors.js';

const folders: string[] = [];
afterAll(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

/** Writes `files` (name → text) into a fresh temp folder; returns the folder. */
export function writeFiles(files: Readonly<Record<string, string>>): string {
  const folder = mkdtempSync(join(tmpdir(), 'gw-config-'));
  folders.push(folder);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(folder, name)), { recursive: true });
    writeFileSync(join(folder, name), text);
  }
  return folder;
}

/** Writes one file and returns its absolute path. */
export function writeFile(name: string, text: string): string {
  return join(writeFiles({ [name]: text }), name);
}

/** The smallest valid gateway.yaml. */
export const MINIMAL_GATEWAY = 'listeners:\n  - { name: public, port: 8080 }\n';

/** The smallest valid routes file with one pool and one route. */
export const MINIMAL_ROUTES = `upstreams:
  users:
    targets: [{ url: http://127.0.0.1:9001 }]
routes:
  - name: users
    prefix: /
    upstream: users
`;

/** Dedents a template literal so YAML fixtures can be indented with the test code. */
export function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const text = strings.reduce((out, part, i) => out + part + (i < values.length ? String(values[i]) : ''), '');
  const lines = text.replace(/^\n/, '').split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)![0].length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

/** Awaits a load that must fail and returns its issues. */
export async function issuesOf(load: Promise<unknown>): Promise<readonly ConfigIssue[]> {
  try {
    await load;
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error('expected the load to fail with a ConfigError');
}

/** Awaits a load that must fail and returns its issues as `FILE:LINE:COL: path: message` lines. */
export async function linesOf(load: Promise<unknown>): Promise<string[]> {
  return (await issuesOf(load)).map(formatConfigIssue);
}

/**
 * `LINE:COL` (1-based) of `needle` in `text`: of its first occurrence after the first occurrence
 * of `after`, when given. Lets tests state where an issue must point without counting columns.
 */
export function at(text: string, needle: string, after = ''): string {
  const start = after === '' ? 0 : text.indexOf(after);
  const offset = text.indexOf(needle, start < 0 ? 0 : start);
  if (start < 0 || offset < 0) throw new Error(`fixture does not contain ${JSON.stringify(after)} then ${JSON.stringify(needle)}`);
  const before = text.slice(0, offset).split('\n');
  return `${before.length}:${(before[before.length - 1]?.length ?? 0) + 1}`;
}

/** `LINE:COL` of the value written after `key:` (its first occurrence after `after`). */
export function atValue(text: string, key: string, after = ''): string {
  const start = text.indexOf(after);
  const keyAt = text.indexOf(`${key}:`, start < 0 ? 0 : start);
  if (start < 0 || keyAt < 0) throw new Error(`fixture does not contain ${JSON.stringify(after)} then ${key}:`);
  let offset = keyAt + key.length + 1;
  while (text[offset] === ' ') offset += 1;
  const before = text.slice(0, offset).split('\n');
  return `${before.length}:${(before[before.length - 1]?.length ?? 0) + 1}`;
}
