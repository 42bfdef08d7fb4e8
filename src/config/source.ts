// A config file as text and as a YAML 1.2 document that remembers where every value came from,
// so each problem found later (schema, semantics, unsupported features) can name FILE:LINE:COL.
// JSON is accepted because it is YAML 1.2 (and `on`/`off` stay strings, as in YAML 1.2).

import { readFile } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { ConfigError, type ConfigIssue } from '../errors.js';

export type PathSegment = string | number;
/** Where a value sits: `['routes', 0, 'upstream']` is shown as `routes[0].upstream`. */
export type FieldPath = readonly PathSegment[];

export interface SourcePosition {
  readonly line: number; // 1-based
  readonly col: number; // 1-based
}

/** Whether a position names a field's value (the usual) or its key (unknown fields, bad names). */
export type PositionTarget = 'value' | 'key';

/** The file name shown to operators: relative to cwd when the file is under cwd, else absolute. */
export function displayPath(absoluteFile: string, cwd: string = process.cwd()): string {
  const rel = relative(cwd, absoluteFile);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : absoluteFile;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

/** `routes[0].upstream`, `upstreams.users.targets[1].url`, `upstreams["orders.v2"]`. */
export function formatFieldPath(path: FieldPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (IDENTIFIER.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

type ParsedDocument = Document.Parsed;

export class ConfigSource {
  readonly file: string;
  readonly displayFile: string;
  readonly text: string;
  readonly doc: ParsedDocument;
  readonly #lines: LineCounter;

  constructor(file: string, text: string, doc: ParsedDocument, lines: LineCounter) {
    this.file = file;
    this.displayFile = displayPath(file);
    this.text = text;
    this.doc = doc;
    this.#lines = lines;
  }

  /** The data as plain JS values; an empty file reads as an empty mapping. */
  toData(): unknown {
    return this.doc.contents === null ? {} : (this.doc.toJS({ maxAliasCount: 100 }) as unknown);
  }

  positionAt(offset: number): SourcePosition {
    const { line, col } = this.#lines.linePos(offset);
    return { line, col };
  }

  /**
   * Where `path` is written. For a field that does not exist (a missing required field, an unknown
   * field's parent), the nearest existing parent is used, so a position is always returned.
   */
  positionOf(path: FieldPath, target: PositionTarget = 'value'): SourcePosition {
    let node: unknown = this.doc.contents;
    let offset = rangeStart(node) ?? 0;
    for (let i = 0; i < path.length; i++) {
      node = isAlias(node) ? node.resolve(this.doc) : node;
      const segment = path[i] as PathSegment;
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(segment));
        if (pair === undefined) break;
        const keyStart = rangeStart(pair.key);
        const valueStart = isEmptyScalar(pair.value) ? undefined : rangeStart(pair.value);
        if (last && target === 'key') return this.positionAt(keyStart ?? offset);
        offset = valueStart ?? keyStart ?? offset;
        if (valueStart === undefined) break;
        node = pair.value;
      } else if (isSeq(node)) {
        const item: unknown = node.items[Number(segment)];
        const start = rangeStart(item);
        if (start === undefined) break;
        offset = start;
        node = item;
      } else {
        break;
      }
    }
    return this.positionAt(offset);
  }
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as YamlNode | null | undefined)?.range;
  return range ? range[0] : undefined;
}

/** `key:` with nothing after it: point at the key, the value has no text of its own. */
function isEmptyScalar(node: unknown): boolean {
  return isScalar(node) && node.value === null && (node.range === undefined || node.range === null || node.range[0] === node.range[1]);
}

/**
 * Parses YAML 1.2 (or JSON). Syntax errors, duplicate keys and warnings (an unknown tag, say) are
 * all errors: a value the gateway reads differently from what the operator meant must not pass.
 */
export function parseConfigSource(file: string, text: string): ConfigSource {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true, version: '1.2', strict: true });
  const source = new ConfigSource(file, text, doc, lines);
  // After the first syntax error the parser resynchronises badly and reports a cascade of
  // follow-on errors; only the first is real. Duplicate keys and warnings are independent findings.
  const firstSyntaxError = doc.errors.find((error) => error.code !== 'DUPLICATE_KEY');
  const problems = [
    ...doc.errors.filter((error) => error.code === 'DUPLICATE_KEY' || error === firstSyntaxError),
    ...doc.warnings,
  ];
  if (problems.length > 0) {
    throw new ConfigError(
      problems.map((problem): ConfigIssue => {
        const at = problem.linePos?.[0] ?? source.positionAt(problem.pos[0]);
        return { file: source.displayFile, line: at.line, col: at.col, path: '', message: yamlMessage(problem.message) };
      }),
    );
  }
  return source;
}

/** prettyErrors appends " at line L, column C:" and a source excerpt; the position is shown apart. */
function yamlMessage(message: string): string {
  const short = message.replace(/ at line \d+, column \d+:[\s\S]*$/, '').trim();
  return `invalid YAML: ${short.charAt(0).toLowerCase()}${short.slice(1)}`;
}

/** Reads and parses a file; an unreadable file is an issue at line 0 (no position to give). */
export async function readConfigSource(file: string): Promise<ConfigSource> {
  const absolute = resolve(file);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (err) {
    const reason = err instanceof Error ? err.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '') : String(err);
    throw new ConfigError([{ file: displayPath(absolute), line: 0, col: 0, path: '', message: `cannot read file: ${reason}` }]);
  }
  return parseConfigSource(absolute, text);
}
