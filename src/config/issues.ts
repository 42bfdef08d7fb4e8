// Collects every problem of one file with its position, so the loader can report them all at once
// (an operator fixing a file wants the whole list, not one error per run).

import { ConfigError, type ConfigIssue } from '../errors.js';
import type { Checked } from './normalize.js';
import { formatFieldPath, type ConfigSource, type FieldPath, type PositionTarget } from './source.js';

export class IssueCollector {
  readonly #source: ConfigSource;
  readonly #issues: ConfigIssue[] = [];

  constructor(source: ConfigSource) {
    this.#source = source;
  }

  /** A problem with the value at `path` (or with its key, for unknown fields and bad names). */
  add(path: FieldPath, message: string, target: PositionTarget = 'value'): void {
    const { line, col } = this.#source.positionOf(path, target);
    this.#push({ file: this.#source.displayFile, line, col, path: formatFieldPath(path), message });
  }

  /** A problem at a known offset of the file text (an environment reference inside a value). */
  addAtOffset(path: FieldPath, offset: number, message: string): void {
    const { line, col } = this.#source.positionAt(offset);
    this.#push({ file: this.#source.displayFile, line, col, path: formatFieldPath(path), message });
  }

  /** The checked value, or `fallback` after reporting the problem at `path`. */
  value<T>(path: FieldPath, result: Checked<T>, fallback: T): T {
    if (result.ok) return result.value;
    this.add(path, result.problem);
    return fallback;
  }

  get size(): number {
    return this.#issues.length;
  }

  /** In file order, so the list reads top to bottom like the file. */
  sorted(): ConfigIssue[] {
    return [...this.#issues].sort((a, b) => a.line - b.line || a.col - b.col);
  }

  throwIfAny(): void {
    if (this.#issues.length > 0) throw new ConfigError(this.sorted());
  }

  #push(issue: ConfigIssue): void {
    const duplicate = this.#issues.some(
      (known) => known.line === issue.line && known.col === issue.col && known.path === issue.path && known.message === issue.message,
    );
    if (!duplicate) this.#issues.push(issue);
  }
}
