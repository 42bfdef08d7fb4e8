import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { SCHEMA_ANNOTATION_KEYWORDS, view } from '../../src/config/schema-fields.js';
import { CONFIG_FILE_SCHEMAS, type ConfigFileKind } from '../../src/config/schema.js';
import { DOCS_PATH, fieldTables, generatedFiles, SCHEMA_FILES } from '../../src/config/schema-docs.js';

const root = new URL('../../', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8');
const KINDS = Object.keys(SCHEMA_FILES) as ConfigFileKind[];

/** Every object node of a schema, with the path the reference uses for it. */
function objectNodes(schema: unknown, path = ''): { path: string; node: Record<string, unknown> }[] {
  const s = view(schema);
  const out: { path: string; node: Record<string, unknown> }[] = [];
  if (s.type === 'object') out.push({ path, node: schema as Record<string, unknown> });
  for (const [name, property] of Object.entries(s.properties ?? {})) out.push(...objectNodes(property, path ? `${path}.${name}` : name));
  if (typeof s.additionalProperties === 'object') out.push(...objectNodes(s.additionalProperties, `${path}.<name>`));
  if (s.items) out.push(...objectNodes(s.items, `${path}[]`));
  for (const branch of s.anyOf ?? []) out.push(...objectNodes(branch, path));
  return out;
}

describe('generated files', () => {
  it('config/schema/*.schema.json and the docs reference are what scripts/write-schemas.ts writes today', () => {
    const docs = read(DOCS_PATH);
    for (const file of generatedFiles(docs)) {
      // When this fails: npx tsc -p . && node dist/scripts/write-schemas.js
      expect(read(file.path), `${file.path} is out of date`).toBe(file.content);
    }
  });

  it('the JSON Schema files carry $schema and $id, and compile in a plain draft-07 validator', () => {
    for (const kind of KINDS) {
      const json = JSON.parse(read(SCHEMA_FILES[kind].path)) as Record<string, unknown>;
      expect(json['$schema']).toBe('http://json-schema.org/draft-07/schema#');
      expect(json['$id']).toBe(SCHEMA_FILES[kind].id);
      const ajv = new Ajv({ strict: false });
      expect(() => ajv.compile(json)).not.toThrow();
    }
  });
});

describe('the schema', () => {
  it.each(KINDS)('%s: every object refuses unknown fields (maps refuse bad names)', (kind) => {
    for (const { path, node } of objectNodes(CONFIG_FILE_SCHEMAS[kind])) {
      const closed = node['additionalProperties'] === false;
      const map = typeof node['additionalProperties'] === 'object' && typeof node['propertyNames'] === 'object';
      expect(closed || map, `${path || '(top level)'} must set additionalProperties: false`).toBe(true);
    }
  });

  it.each(KINDS)('%s: every field documents its meaning, and its default or that it is required', (kind) => {
    for (const table of fieldTables(kind)) {
      for (const row of table.rows) {
        expect(row.doc.length, `${row.path} has no description`).toBeGreaterThan(5);
        expect(row.required || row.default !== null || row.absent !== null, `${row.path} says neither default nor required`).toBe(true);
      }
    }
  });

  it.each(KINDS)('%s: descriptions carry the unit, bounds and default for editors', (kind) => {
    for (const { node } of objectNodes(CONFIG_FILE_SCHEMAS[kind])) {
      const required = new Set((node['required'] as string[] | undefined) ?? []);
      for (const [name, property] of Object.entries((node['properties'] as Record<string, unknown> | undefined) ?? {})) {
        const p = view(property);
        const description = p.description ?? '';
        if (required.has(name)) expect(description).toMatch(/Required\.$/);
        if (p.default !== undefined) expect(description).toContain('Default: ');
        if (p['x-unit'] === 'duration') expect(description).toContain('A duration');
        if (p['x-min'] !== undefined) expect(description).toContain(`${p['x-min']} to ${p['x-max']}`);
        if (p.minimum !== undefined && p.maximum !== undefined) expect(description).toContain(`${p.minimum} to ${p.maximum}`);
      }
    }
  });

  it('uses only the vendor keywords the loader registers', () => {
    const known = new Set<string>(SCHEMA_ANNOTATION_KEYWORDS);
    for (const kind of KINDS) {
      const vendor = read(SCHEMA_FILES[kind].path).match(/"x-[a-z-]+"/g) ?? [];
      for (const keyword of vendor) expect(known).toContain(keyword.slice(1, -1));
    }
  });
});

describe('docs/configuration.md', () => {
  const docs = read(DOCS_PATH);
  const rowOf = (path: string): string | undefined => docs.split('\n').find((line) => line.startsWith(`| \`${path}\` |`));

  it.each(KINDS)('lists every %s field with its type and default', (kind) => {
    let rows = 0;
    for (const table of fieldTables(kind)) {
      for (const field of table.rows) {
        const row = rowOf(field.path);
        expect(row, `${field.path} is missing from ${DOCS_PATH}`).toBeDefined();
        const cells = (row ?? '').split(' | ');
        expect(cells[1]).toBe(field.type);
        if (field.required) expect(cells[2]).toBe('required');
        else if (field.default !== null) expect(cells[2]).toBe(`\`${field.default}\``);
        rows += 1;
      }
    }
    expect(rows).toBeGreaterThan(kind === 'gateway' ? 25 : 80);
  });

  it('documents the defaults an operator relies on most', () => {
    expect(rowOf('limits.requestTimeout')).toContain('`60s`');
    expect(rowOf('upstreams.<name>.outlierDetection.maxEjectionPercent')).toContain('`50`');
    expect(rowOf('upstreams.<name>.balancer')).toContain('`least-request`');
    expect(rowOf('routes[].auth')).toContain('`none`');
    expect(rowOf('routes')).toContain('required');
  });
});
