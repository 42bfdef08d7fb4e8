// Validates parsed data against the file schemas and turns Ajv's findings into operator words at
// the right place: `unknown field "upstrem" (did you mean "upstream"?)` at the key, `must be one
// of: a, b`, `expected a duration like 250ms, 10s, 5m, 1h`. For a value that may take several
// forms (`off` or an object) only the form the operator evidently meant is reported.

import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { describeType, SCHEMA_ANNOTATION_KEYWORDS, view, type DefaultValue } from './schema-fields.js';
import { CONFIG_FILE_SCHEMAS, type ConfigFileKind } from './schema.js';
import type { FieldPath, PathSegment, PositionTarget } from './source.js';
import { didYouMean } from './suggest.js';
import { readDuration, readSize, type UnitReading } from './units.js';
import { yamlFlow } from './yaml-scalar.js';

export interface SchemaProblem {
  readonly path: FieldPath;
  readonly target: PositionTarget;
  readonly message: string;
}

const UNIT_READERS: Readonly<Record<string, (text: string) => UnitReading>> = { duration: readDuration, size: readSize };

function createAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, verbose: true, strict: true });
  for (const keyword of SCHEMA_ANNOTATION_KEYWORDS) {
    if (keyword !== 'x-unit') ajv.addKeyword({ keyword, schemaType: 'string' });
  }
  // Bounds of durations and sizes need the value read first, which JSON Schema cannot do.
  ajv.addKeyword({
    keyword: 'x-unit',
    schemaType: 'string',
    errors: true,
    compile(unit: string, parentSchema) {
      const reader = UNIT_READERS[unit];
      const pattern = typeof parentSchema['pattern'] === 'string' ? new RegExp(parentSchema['pattern']) : null;
      const min = typeof parentSchema['x-min'] === 'string' ? parentSchema['x-min'] : undefined;
      const max = typeof parentSchema['x-max'] === 'string' ? parentSchema['x-max'] : undefined;
      const check: ((data: unknown) => boolean) & { errors?: Partial<ErrorObject>[] } = (data) => {
        // A malformed value is the pattern keyword's to report (a non-string the type keyword's);
        // this one reports only what they cannot see: bounds, and sub-millisecond precision.
        if (reader === undefined || typeof data !== 'string' || (pattern !== null && !pattern.test(data))) return true;
        const reading = reader(data);
        let message: string | null = null;
        if (!reading.ok) message = reading.problem;
        else if (min !== undefined && reading.value < unitValue(reader, min)) message = `must be at least ${min}`;
        else if (max !== undefined && reading.value > unitValue(reader, max)) message = `must be at most ${max}`;
        check.errors = message === null ? undefined : [{ keyword: 'x-unit', message, params: { unit } }];
        return message === null;
      };
      return check;
    },
  });
  return ajv;
}

function unitValue(reader: (text: string) => UnitReading, text: string): number {
  const reading = reader(text);
  if (!reading.ok) throw new Error(`schema bound ${text} is not valid: ${reading.problem}`);
  return reading.value;
}

let ajvInstance: Ajv | null = null;
const validators = new Map<ConfigFileKind, ValidateFunction>();

function validatorFor(kind: ConfigFileKind): ValidateFunction {
  let validate = validators.get(kind);
  if (validate === undefined) {
    ajvInstance ??= createAjv();
    validate = ajvInstance.compile(CONFIG_FILE_SCHEMAS[kind]);
    validators.set(kind, validate);
  }
  return validate;
}

/** Every schema problem of `data`, in operator words, with the path each one is about. */
export function checkSchema(kind: ConfigFileKind, data: unknown): SchemaProblem[] {
  const validate = validatorFor(kind);
  if (validate(data)) return [];
  const errors = selectBranches(validate.errors ?? []);
  const problems: SchemaProblem[] = [];
  for (const error of errors) {
    const problem = translate(error, data);
    if (problem !== null && !problems.some((p) => samePath(p.path, problem.path) && p.message === problem.message)) {
      problems.push(problem);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// anyOf: keep the errors of the branch the operator meant.

/** An anyOf whose branches all failed, replaced by one "expected …" error. */
interface Synthetic extends ErrorObject {
  readonly keyword: 'x-expected';
}

function selectBranches(errors: readonly ErrorObject[]): ErrorObject[] {
  const dropped = new Set<ErrorObject>();
  const synthetic: Synthetic[] = [];
  const anyOfs = errors.filter((e) => e.keyword === 'anyOf').sort((a, b) => a.schemaPath.length - b.schemaPath.length);
  for (const anyOf of anyOfs) {
    if (dropped.has(anyOf)) continue;
    dropped.add(anyOf);
    const base = `${anyOf.schemaPath}/`;
    // One schema node serves many values (every upstream's outlierDetection), so an error belongs
    // to this anyOf only when both its schema path and its instance path lie under it.
    const inside = errors.filter(
      (e) => e !== anyOf && !dropped.has(e) && e.schemaPath.startsWith(base) && isWithin(e.instancePath, anyOf.instancePath),
    );
    const branches = (anyOf.schema ?? []) as unknown[];
    const chosen = chooseBranch(branches, anyOf.data, inside, base);
    const kept = inside.filter((e) => branchIndex(e, base) === chosen);
    for (const e of inside) if (!kept.includes(e)) dropped.add(e);
    // Failing only on the spelling itself (`of` for `off`): list every accepted form instead.
    const onlySpelling = kept.every((e) => e.instancePath === anyOf.instancePath && ['const', 'enum', 'type'].includes(e.keyword));
    if (chosen < 0 || onlySpelling) {
      for (const e of kept) dropped.add(e);
      const expected = view(anyOf.parentSchema)['x-expected'] ?? branches.map((b) => describeBranch(b)).join(' or ');
      const words = branches.flatMap((b) => [view(b).const, ...(view(b).enum ?? [])]).filter((w): w is string => typeof w === 'string');
      const hint = typeof anyOf.data === 'string' ? didYouMean(anyOf.data, words) : '';
      synthetic.push({ ...anyOf, keyword: 'x-expected', message: `expected ${expected}${hint}`, params: {} });
    }
  }
  return [...errors.filter((e) => !dropped.has(e)), ...synthetic];
}

function isWithin(instancePath: string, parent: string): boolean {
  return instancePath === parent || instancePath.startsWith(`${parent}/`);
}

function branchIndex(error: ErrorObject, base: string): number {
  return Number(error.schemaPath.slice(base.length).split('/')[0]);
}

function jsonType(data: unknown): string {
  if (data === null) return 'null';
  if (Array.isArray(data)) return 'array';
  if (typeof data === 'number') return Number.isInteger(data) ? 'integer' : 'number';
  return typeof data;
}

function admits(branch: unknown, data: unknown): boolean {
  const schema = view(branch);
  const actual = jsonType(data);
  if (schema.anyOf) return schema.anyOf.some((inner) => admits(inner, data));
  if (schema.type === undefined) return true;
  return schema.type === actual || (schema.type === 'number' && actual === 'integer');
}

/** The branch whose type fits the data; among several, the one with the fewest errors; else -1. */
function chooseBranch(branches: readonly unknown[], data: unknown, inside: readonly ErrorObject[], base: string): number {
  const fitting = branches.map((branch, index) => ({ branch, index })).filter(({ branch }) => admits(branch, data));
  if (fitting.length === 0) return -1;
  const errorCount = (index: number): number => inside.filter((e) => branchIndex(e, base) === index).length;
  return fitting.reduce((best, candidate) => (errorCount(candidate.index) < errorCount(best.index) ? candidate : best)).index;
}

const ARTICLE_TYPES: Readonly<Record<string, string>> = {
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
  null: 'null',
  object: 'an object',
  array: 'a list',
};

function describeBranch(branch: unknown): string {
  const schema = view(branch);
  if (schema['x-expected']) return schema['x-expected'];
  if (schema.const !== undefined) return yamlFlow(schema.const as DefaultValue);
  if (schema.enum) return `one of ${schema.enum.map((v) => yamlFlow(v as DefaultValue)).join(', ')}`;
  return ARTICLE_TYPES[schema.type ?? ''] ?? describeType(branch);
}

// ---------------------------------------------------------------------------------------------
// One Ajv error → one problem.

function samePath(a: FieldPath, b: FieldPath): boolean {
  return a.length === b.length && a.every((segment, i) => segment === b[i]);
}

/** Ajv's JSON pointer as a field path, with array indexes as numbers (shown `[0]`). */
function toFieldPath(instancePath: string, data: unknown): PathSegment[] {
  const path: PathSegment[] = [];
  let current: unknown = data;
  for (const raw of instancePath.split('/').slice(1)) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(current)) {
      path.push(Number(segment));
      current = current[Number(segment)];
    } else {
      path.push(segment);
      current = current !== null && typeof current === 'object' ? (current as Record<string, unknown>)[segment] : undefined;
    }
  }
  return path;
}

function got(data: unknown): string {
  const type = jsonType(data);
  if (type === 'null') return 'null';
  if (type === 'string') return `the string ${JSON.stringify(data)}`;
  return ARTICLE_TYPES[type] ?? type;
}

const UNIT_TYPE_HINT: Readonly<Record<string, string>> = {
  duration: ' (a number needs a unit: ms, s, m or h)',
  size: ' (a number needs a unit: b, kb, mb or gb)',
  percent: '',
};

function translate(error: ErrorObject, data: unknown): SchemaProblem | null {
  const path = toFieldPath(error.instancePath, data);
  const parent = view(error.parentSchema);
  const params = error.params as Record<string, unknown>;
  const at = (message: string, target: PositionTarget = 'value'): SchemaProblem => ({ path, target, message });

  // A bad map key (propertyNames) is reported once, by the propertyNames error itself.
  if ((error as { propertyName?: string }).propertyName !== undefined) return null;

  switch (error.keyword) {
    case 'additionalProperties': {
      const field = String(params['additionalProperty']);
      const known = Object.keys(parent.properties ?? {});
      return { path: [...path, field], target: 'key', message: `unknown field "${field}"${didYouMean(field, known)}` };
    }
    case 'propertyNames': {
      const name = String(params['propertyName']);
      const expected = view((error.parentSchema as { propertyNames?: unknown }).propertyNames)['x-expected'] ?? 'a valid name';
      return { path: [...path, name], target: 'key', message: `invalid name "${name}": expected ${expected}` };
    }
    case 'required':
      return at(`missing required field "${String(params['missingProperty'])}"`);
    case 'type': {
      const unit = parent['x-unit'];
      if (unit !== undefined && parent['x-expected']) return at(`expected ${parent['x-expected']}${UNIT_TYPE_HINT[unit] ?? ''}`);
      const wanted = String(params['type'])
        .split(',')
        .map((t) => ARTICLE_TYPES[t] ?? t)
        .join(' or ');
      return at(`expected ${wanted}, got ${got(error.data)}`);
    }
    case 'enum': {
      const allowed = (params['allowedValues'] as unknown[]).map((v) => String(v));
      const hint = typeof error.data === 'string' ? didYouMean(error.data, allowed) : '';
      return at(`must be one of: ${allowed.join(', ')}${hint}`);
    }
    case 'const':
      return at(`must be ${yamlFlow(params['allowedValue'] as DefaultValue)}`);
    case 'pattern':
      return at(parent['x-expected'] ? `expected ${parent['x-expected']}` : `must match the pattern ${String(params['pattern'])}`);
    case 'minimum':
    case 'exclusiveMinimum':
      return at(`must be ${error.keyword === 'minimum' ? 'at least' : 'more than'} ${String(params['limit'])}`);
    case 'maximum':
    case 'exclusiveMaximum':
      return at(`must be ${error.keyword === 'maximum' ? 'at most' : 'less than'} ${String(params['limit'])}`);
    case 'minLength':
      return at(params['limit'] === 1 ? 'must not be empty' : `must be at least ${String(params['limit'])} characters long`);
    case 'maxLength':
      return at(`must be at most ${String(params['limit'])} characters long`);
    case 'minItems':
      return at(params['limit'] === 1 ? 'must not be empty' : `must have at least ${String(params['limit'])} entries`);
    case 'maxItems':
      return at(`must have at most ${String(params['limit'])} entries`);
    case 'uniqueItems': {
      // Ajv scans from the end: `i` is the earlier entry, `j` the repeat after it.
      const first = Number(params['i']);
      const second = Number(params['j']);
      const item = Array.isArray(error.data) ? (error.data[second] as DefaultValue) : null;
      return { path: [...path, second], target: 'value', message: `${yamlFlow(item)} is listed twice (also at [${first}])` };
    }
    default:
      return at(error.message ?? `is not valid (${error.keyword})`);
  }
}
