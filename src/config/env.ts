// `${NAME}` and `${NAME:-default}` in string values, resolved on the parsed document rather than on
// the text so every value keeps its line and column (and a variable holding `: ` or `#` cannot change
// the file's structure). `$${` is a literal `${`. Map keys are not interpolated: they are field
// names and pool names, which an environment should not rename.
//
// An unquoted value that was (or contained) a reference is re-read as YAML 1.2 would read it had
// the result been typed there, so `port: ${PORT}` gives a number and `pidFile: ${PID_FILE:-}` gives
// null. A quoted value always stays a string.

import { isMap, isScalar, isSeq, Scalar } from 'yaml';
import type { ConfigSource, FieldPath } from './source.js';
import { resolvePlainScalar } from './yaml-scalar.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface EnvProblem {
  readonly path: FieldPath;
  /** Offset in the file text of the offending `${`, or of the value when it cannot be pinned. */
  readonly offset: number;
  readonly message: string;
}

export type Expansion =
  | { readonly ok: true; readonly value: string; readonly substituted: boolean }
  | { readonly ok: false; readonly problems: readonly { readonly index: number; readonly message: string }[] };

const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

/** Expands the references of one string. `index` of a problem is the position of its `${`. */
export function expandEnv(text: string, env: Env): Expansion {
  let out = '';
  let substituted = false;
  const problems: { index: number; message: string }[] = [];
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$${', i)) {
      out += '${';
      i += 3;
      continue;
    }
    if (!text.startsWith('${', i)) {
      out += text[i];
      i += 1;
      continue;
    }
    const close = text.indexOf('}', i + 2);
    if (close < 0) {
      problems.push({ index: i, message: 'unterminated ${ (write $${ for a literal ${)' });
      break;
    }
    const body = text.slice(i + 2, close);
    const match = REFERENCE.exec(body);
    if (match === null) {
      problems.push({ index: i, message: `invalid variable reference "\${${body}}": expected \${NAME} or \${NAME:-default}` });
    } else {
      const name = match[1] as string;
      const fallback = match[2];
      const value = env[name];
      substituted = true;
      if (fallback !== undefined) out += value === undefined || value === '' ? fallback : value;
      else if (value !== undefined) out += value;
      else problems.push({ index: i, message: `environment variable ${name} is not set (write \${${name}:-default} to give a default)` });
    }
    i = close + 1;
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value: out, substituted };
}

/**
 * Replaces references in every string value of the document, in place. Values with a problem are
 * left as written; the problems are returned with their positions.
 */
export function interpolateEnv(source: ConfigSource, env: Env): EnvProblem[] {
  const problems: EnvProblem[] = [];
  const visit = (node: unknown, path: FieldPath): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        visit(pair.value, [...path, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, index) => visit(item, [...path, index]));
    } else if (isScalar(node) && typeof node.value === 'string') {
      const expansion = expandEnv(node.value, env);
      if (!expansion.ok) {
        for (const problem of expansion.problems) {
          problems.push({ path, offset: offsetInSource(source, node, problem.index), message: problem.message });
        }
      } else if (expansion.substituted || expansion.value !== node.value) {
        node.value = node.type === Scalar.PLAIN ? resolvePlainScalar(expansion.value) : expansion.value;
      }
    }
    // Aliases are skipped: the anchored node they point to is interpolated where it is defined.
  };
  visit(source.doc.contents, []);
  return problems;
}

/** Pins a problem to its `${` when the value is written verbatim on one line, else to the value. */
function offsetInSource(source: ConfigSource, node: Scalar, index: number): number {
  const start = node.range?.[0] ?? 0;
  const value = String(node.value);
  const quote = node.type === Scalar.QUOTE_SINGLE || node.type === Scalar.QUOTE_DOUBLE ? 1 : 0;
  const written = source.text.slice(start + quote, start + quote + value.length);
  return written === value ? start + quote + index : start;
}
