// Everything generated from the schemas: the JSON Schema files editors load (config/schema/) and
// the field reference of docs/configuration.md. Pure functions, so `scripts/write-schemas.ts` can
// write their output and a test can check the committed files are what they would write today.

import { describeBounds, describeType, view } from './schema-fields.js';
import { CONFIG_FILE_SCHEMAS, type ConfigFileKind } from './schema.js';
import { yamlFlow } from './yaml-scalar.js';

export const JSON_SCHEMA_DIALECT = 'http://json-schema.org/draft-07/schema#';

export interface SchemaFileInfo {
  /** Path from the repository root. */
  readonly path: string;
  readonly id: string;
  readonly title: string;
  /** The config file it describes, as named in the docs. */
  readonly describes: string;
}

export const SCHEMA_FILES: Readonly<Record<ConfigFileKind, SchemaFileInfo>> = {
  gateway: {
    path: 'config/schema/gateway.schema.json',
    id: 'urn:edge-gateway:config:gateway',
    title: 'Edge gateway: gateway.yaml',
    describes: 'gateway.yaml',
  },
  routes: {
    path: 'config/schema/routes.schema.json',
    id: 'urn:edge-gateway:config:routes',
    title: 'Edge gateway: routes.yaml',
    describes: 'routes.yaml',
  },
};

export const DOCS_PATH = 'docs/configuration.md';
export const GENERATED_START = '<!-- generated:start -->';
export const GENERATED_END = '<!-- generated:end -->';

/** The JSON Schema file for one config file: pretty JSON with `$schema`, `$id` and a title. */
export function renderSchemaJson(kind: ConfigFileKind): string {
  const info = SCHEMA_FILES[kind];
  const document = { $schema: JSON_SCHEMA_DIALECT, $id: info.id, title: info.title, ...CONFIG_FILE_SCHEMAS[kind] };
  return `${JSON.stringify(document, null, 2)}\n`;
}

export interface FieldRow {
  /** `listeners[].tls.minVersion`, `upstreams.<name>.targets[].url`. */
  readonly path: string;
  readonly type: string;
  readonly required: boolean;
  /** The default as YAML (`10s`, `[]`, `null`), or null when the field is required or has none. */
  readonly default: string | null;
  /** What leaving the field out means when no value stands in for it. */
  readonly absent: string | null;
  readonly bounds: string;
  readonly doc: string;
}

export interface FieldTable {
  /** Path of the object whose fields the table lists; '' for the top level of the file. */
  readonly path: string;
  readonly rows: readonly FieldRow[];
}

function child(path: string, name: string): string {
  return path === '' ? name : `${path}.${name}`;
}

/** One table per object of the schema, parents before children, fields in schema order. */
export function fieldTables(kind: ConfigFileKind): FieldTable[] {
  const tables: FieldTable[] = [];
  const visitObject = (schema: unknown, path: string): void => {
    const s = view(schema);
    const properties = Object.entries(s.properties ?? {});
    const required = new Set((schema as { required?: readonly string[] }).required ?? []);
    const rows = properties.map(([name, property]): FieldRow => {
      const p = view(property);
      return {
        path: child(path, name),
        type: describeType(property),
        required: required.has(name),
        default: p.default === undefined ? null : yamlFlow(p.default),
        absent: p['x-absent'] ?? null,
        bounds: describeBounds(property),
        doc: p['x-doc'] ?? p.description ?? '',
      };
    });
    tables.push({ path, rows });
    for (const [name, property] of properties) visitNested(property, child(path, name));
  };
  const visitNested = (schema: unknown, path: string): void => {
    const s = view(schema);
    if (s.type === 'object' && s.properties) visitObject(schema, path);
    else if (s.type === 'object' && typeof s.additionalProperties === 'object') visitNested(s.additionalProperties, `${path}.<name>`);
    else if (s.type === 'array' && s.items) visitNested(s.items, `${path}[]`);
    else if (s.anyOf) for (const branch of s.anyOf) visitNested(branch, path);
  };
  visitObject(CONFIG_FILE_SCHEMAS[kind], '');
  return tables;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function defaultCell(row: FieldRow): string {
  if (row.required) return 'required';
  if (row.default !== null) return `\`${row.default}\``;
  return row.absent !== null ? `unset: ${row.absent}` : '';
}

function renderTable(file: string, table: FieldTable): string {
  const heading = table.path === '' ? `#### ${file}: top level` : `#### ${file}: \`${table.path}\``;
  const lines = [heading, '', '| field | type | default | bounds | description |', '|---|---|---|---|---|'];
  for (const row of table.rows) {
    lines.push(`| \`${row.path}\` | ${cell(row.type)} | ${cell(defaultCell(row))} | ${cell(row.bounds)} | ${cell(row.doc)} |`);
  }
  return lines.join('\n');
}

/** The generated reference: every object of both files as a table of its fields. */
export function renderReference(): string {
  const parts = [
    '<!-- Generated from src/config/schema.ts by scripts/write-schemas.ts: edit the schema, not this section. -->',
  ];
  for (const kind of Object.keys(SCHEMA_FILES) as ConfigFileKind[]) {
    const info = SCHEMA_FILES[kind];
    parts.push(`### ${info.describes}`, `JSON Schema: \`${info.path}\`.`);
    for (const table of fieldTables(kind)) parts.push(renderTable(info.describes, table));
  }
  return parts.join('\n\n');
}

/** `markdown` with the part between the generated markers replaced by `generated`. */
export function replaceGeneratedSection(markdown: string, generated: string): string {
  const start = markdown.indexOf(GENERATED_START);
  const end = markdown.indexOf(GENERATED_END);
  if (start < 0 || end < start) {
    throw new Error(`${DOCS_PATH} must contain ${GENERATED_START} followed by ${GENERATED_END}`);
  }
  return `${markdown.slice(0, start + GENERATED_START.length)}\n\n${generated}\n\n${markdown.slice(end)}`;
}

export interface GeneratedFile {
  readonly path: string;
  readonly content: string;
}

/** Every generated file as it should be, given the docs page as it is now (for its hand-written part). */
export function generatedFiles(currentDocs: string): GeneratedFile[] {
  return [
    ...(Object.keys(SCHEMA_FILES) as ConfigFileKind[]).map((kind) => ({ path: SCHEMA_FILES[kind].path, content: renderSchemaJson(kind) })),
    { path: DOCS_PATH, content: replaceGeneratedSection(currentDocs, renderReference()) },
  ];
}
