// Builders for the field kinds of the config schema. Each builder writes the Envoy-style
// description (meaning, unit, bounds, default) from the same data it puts in the machine-readable
// keywords, so the description can never disagree with what is enforced.
//
// Vendor keywords (all annotations for editors; `x-unit` is also enforced by the loader's Ajv):
//   x-doc       the meaning alone, for the generated reference table
//   x-absent    what leaving an optional field out means, when no default value stands in for it
//   x-unit      duration | size | percent: how the string is read
//   x-min/x-max bounds of a duration or size, in the operator's spelling
//   x-expected  operator words for "what a valid value looks like", used in error messages

import {
  Type,
  type TArray,
  type TBoolean,
  type TInteger,
  type TNull,
  type TNumber,
  type TObject,
  type TProperties,
  type TSchema,
  type TString,
  type TUnion,
  type TUnsafe,
  type Static,
} from '@sinclair/typebox';
import {
  DURATION_EXAMPLE,
  DURATION_PATTERN,
  PERCENT_EXAMPLE,
  PERCENT_PATTERN,
  SIZE_EXAMPLE,
  SIZE_PATTERN,
} from './units.js';
import { yamlFlow, type YamlValue } from './yaml-scalar.js';

export const SCHEMA_ANNOTATION_KEYWORDS = ['x-doc', 'x-absent', 'x-unit', 'x-min', 'x-max', 'x-expected'] as const;

export type UnitKind = 'duration' | 'size' | 'percent';

/** Plain data a default can be: what YAML can spell. */
export type DefaultValue = YamlValue;

export interface FieldSpec {
  /** The meaning, in the operator's words: what the field does and why one would set it. */
  readonly doc: string;
  /** Value used when the field is absent. Leave out for required fields. */
  readonly default?: DefaultValue;
  /** What absence means when no value stands in for it, e.g. "any host matches". */
  readonly absent?: string;
}

// ---------------------------------------------------------------------------------------------
// Patterns shared by the schema and the loader's error messages.

export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$';
export const NAME_EXPECTED = "a name of up to 63 letters, digits, '.', '_' or '-', starting with a letter or digit";

/** RFC 9110 token: what a header name may contain. */
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
export const HEADER_NAME_PATTERN = `^${TOKEN}$`;
export const HEADER_NAME_EXPECTED = 'a header name (RFC 9110 token characters)';

export const RATE_LIMIT_KEY_PATTERN = `^(ip|route|header:${TOKEN}|jwt:[^\\s]+)$`;
export const RATE_LIMIT_KEY_EXPECTED = 'ip, route, header:<name> or jwt:<claim>';

export const HASH_ON_PATTERN = `^(ip|header:${TOKEN}|cookie:${TOKEN}|jwt:[^\\s]+)$`;
export const HASH_ON_EXPECTED = 'ip, header:<name>, cookie:<name> or jwt:<claim>';

export const ABSOLUTE_PATH_PATTERN = '^/';
export const ABSOLUTE_PATH_EXPECTED = 'a path starting with /';

export const METHOD_PATTERN = '^[A-Za-z]+$';
export const METHOD_EXPECTED = 'an HTTP method name such as GET';

// ---------------------------------------------------------------------------------------------
// Rendering shared by descriptions and the generated reference.

/** The keywords of a schema node this module reads or writes. */
export interface SchemaView {
  readonly type?: string;
  readonly const?: unknown;
  readonly enum?: readonly unknown[];
  readonly anyOf?: readonly SchemaView[];
  readonly items?: SchemaView;
  readonly properties?: Readonly<Record<string, SchemaView>>;
  readonly additionalProperties?: SchemaView | boolean;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly default?: DefaultValue;
  readonly description?: string;
  readonly 'x-doc'?: string;
  readonly 'x-absent'?: string;
  readonly 'x-unit'?: UnitKind;
  readonly 'x-min'?: string;
  readonly 'x-max'?: string;
  readonly 'x-expected'?: string;
}

/** Reads any schema node through the keywords this module writes. */
export function view(schema: unknown): SchemaView {
  return schema as SchemaView;
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  string: 'string',
  integer: 'integer',
  number: 'number',
  boolean: 'boolean',
  null: 'null',
  object: 'object',
  array: 'list',
};

/** Short type name for the reference table: `duration`, `list of string`, `"off" or object`. */
export function describeType(schema: unknown): string {
  const s = view(schema);
  if (s['x-unit']) return s['x-unit'];
  if (s.const !== undefined) return yamlFlow(s.const as DefaultValue);
  if (s.enum) return 'enum';
  if (s.anyOf && s.anyOf.every((branch) => branch.enum !== undefined)) return 'enum';
  if (s.anyOf) return s.anyOf.map((branch) => describeType(branch)).join(' or ');
  if (s.type === 'array' && s.items) return `list of ${describeType(s.items)}`;
  if (s.type === 'object' && typeof s.additionalProperties === 'object') {
    return `map of name to ${describeType(s.additionalProperties)}`;
  }
  return TYPE_WORDS[s.type ?? ''] ?? 'any';
}

/** Bounds in words: `1 to 65535`, `1ms to 1h`, `one of: a, b`, `at least 1 entry`; '' when none. */
export function describeBounds(schema: unknown): string {
  const s = view(schema);
  if (s['x-unit'] === 'percent') return '0 to 100';
  if (s['x-unit']) return s['x-min'] !== undefined || s['x-max'] !== undefined ? range(s['x-min'], s['x-max']) : '';
  const parts: string[] = [];
  if (s.minimum !== undefined || s.maximum !== undefined) parts.push(range(s.minimum, s.maximum));
  if (s.enum) parts.push(`one of: ${s.enum.map(String).join(', ')}`);
  if (s.type === 'array' && s.items) {
    const each = describeBounds(s.items);
    if (each) parts.push(`each: ${each}`);
  }
  if (s.minItems !== undefined && s.minItems > 0) parts.push(`at least ${s.minItems} ${s.minItems === 1 ? 'entry' : 'entries'}`);
  if (s.maxItems !== undefined) parts.push(`at most ${s.maxItems} entries`);
  // minLength 1 is left out: nearly every string has it, and "not empty" goes without saying.
  if (s.minLength !== undefined && s.minLength > 1) parts.push(`at least ${s.minLength} characters`);
  if (s.maxLength !== undefined) parts.push(`at most ${s.maxLength} characters`);
  if (s['x-expected'] && !s.anyOf) parts.push(s['x-expected']);
  if (s.anyOf) {
    const enums = s.anyOf.flatMap((branch) => branch.enum ?? []);
    if (s.anyOf.every((branch) => branch.enum !== undefined)) {
      parts.push(`one of: ${[...new Set(enums.map(String))].join(', ')}`);
    } else {
      for (const branch of s.anyOf) {
        const inner = describeBounds(branch);
        if (inner) parts.push(inner);
      }
    }
  }
  return parts.join('; ');
}

function range(min: string | number | undefined, max: string | number | undefined): string {
  if (min !== undefined && max !== undefined) return `${min} to ${max}`;
  return min !== undefined ? `at least ${min}` : `at most ${String(max)}`;
}

/** The Default column / sentence: the YAML value, or what absence means, or '' for required. */
export function describeDefault(spec: FieldSpec): string {
  if (spec.default !== undefined) return yamlFlow(spec.default);
  if (spec.absent !== undefined) return `unset (${spec.absent})`;
  return '';
}

function sentence(text: string): string {
  const trimmed = text.trim();
  return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

const UNIT_SENTENCES: Readonly<Record<UnitKind, string>> = {
  duration: 'A duration: a number and a unit, ms, s, m or h (250ms, 10s, 1h30m).',
  size: 'A size: a number and a unit, b, kb, mb or gb, binary (1kb = 1024 bytes).',
  percent: 'A percentage: 50% or a plain number from 0 to 100.',
};

function describe<S extends TSchema>(schema: S, spec: FieldSpec): S {
  const parts = [sentence(spec.doc)];
  const unit = view(schema)['x-unit'];
  if (unit) parts.push(UNIT_SENTENCES[unit]);
  const bounds = unit === 'percent' ? '' : describeBounds(schema);
  if (bounds) parts.push(sentence(`Bounds: ${bounds}`));
  const fallback = describeDefault(spec);
  if (fallback) parts.push(`Default: ${fallback}.`);
  const described: Record<string, unknown> = schema;
  described['description'] = parts.join(' ');
  described['x-doc'] = spec.doc;
  if (spec.default !== undefined) described['default'] = spec.default;
  if (spec.absent !== undefined) described['x-absent'] = spec.absent;
  return schema;
}

/** Marks a property as required: its description says so, and TypeBox leaves it non-optional. */
export function req<S extends TSchema>(schema: S): S {
  return { ...schema, description: `${String(view(schema).description ?? '')} Required.`.trim() };
}

export const opt = Type.Optional;

// ---------------------------------------------------------------------------------------------
// Field builders.

export function Duration(spec: FieldSpec & { readonly min: string; readonly max: string; readonly zeroMeans?: string }): TString {
  const schema = Type.String({ pattern: DURATION_PATTERN, 'x-unit': 'duration', 'x-min': spec.min, 'x-max': spec.max, 'x-expected': DURATION_EXAMPLE });
  const doc = spec.zeroMeans ? `${sentence(spec.doc)} 0s ${spec.zeroMeans}.` : spec.doc;
  return describe(schema, { ...spec, doc });
}

export function Size(spec: FieldSpec & { readonly min: string; readonly max: string }): TString {
  const schema = Type.String({ pattern: SIZE_PATTERN, 'x-unit': 'size', 'x-min': spec.min, 'x-max': spec.max, 'x-expected': SIZE_EXAMPLE });
  return describe(schema, spec);
}

export type PercentValue = string | number;

/** `50%` or a plain number 0–100: the SPEC writes both (`panicThreshold: 50%`, `percent: 0.1`). */
export function Percent(spec: FieldSpec): TUnsafe<PercentValue> {
  const schema = Type.Unsafe<PercentValue>({
    anyOf: [
      { type: 'number', minimum: 0, maximum: 100 },
      { type: 'string', pattern: PERCENT_PATTERN, 'x-unit': 'percent', 'x-expected': PERCENT_EXAMPLE },
    ],
    'x-unit': 'percent',
    'x-expected': PERCENT_EXAMPLE,
  });
  return describe(schema, spec);
}

export function Int(spec: FieldSpec & { readonly min: number; readonly max: number }): TInteger {
  return describe(Type.Integer({ minimum: spec.min, maximum: spec.max }), spec);
}

export function Num(spec: FieldSpec & { readonly min: number; readonly max: number }): TNumber {
  return describe(Type.Number({ minimum: spec.min, maximum: spec.max }), spec);
}

export function Bool(spec: FieldSpec): TBoolean {
  return describe(Type.Boolean(), spec);
}

export function Str(
  spec: FieldSpec & { readonly pattern?: string; readonly expected?: string; readonly maxLength?: number; readonly allowEmpty?: boolean },
): TString {
  const schema = Type.String({
    ...(spec.allowEmpty ? {} : { minLength: 1 }),
    ...(spec.pattern !== undefined ? { pattern: spec.pattern } : {}),
    ...(spec.expected !== undefined ? { 'x-expected': spec.expected } : {}),
    ...(spec.maxLength !== undefined ? { maxLength: spec.maxLength } : {}),
  });
  return describe(schema, spec);
}

export function Name(spec: FieldSpec): TString {
  return Str({ ...spec, pattern: NAME_PATTERN, expected: NAME_EXPECTED });
}

export function Enum<const V extends readonly string[]>(values: V, spec: FieldSpec): TUnsafe<V[number]> {
  return describe(Type.Unsafe<V[number]>({ type: 'string', enum: [...values] }), spec);
}

/** A flag whose only meaningful value is true (`present: true`). */
export function True(spec: FieldSpec): TUnsafe<true> {
  return describe(Type.Unsafe<true>({ type: 'boolean', const: true }), spec);
}

/** An exact string, for spellings such as `off` and `none`. */
export function Word<const W extends string>(word: W): TUnsafe<W> {
  return Type.Unsafe<W>({ type: 'string', const: word });
}

export function List<S extends TSchema>(
  items: S,
  spec: FieldSpec & { readonly minItems?: number; readonly maxItems?: number; readonly unique?: boolean },
): TArray<S> {
  const schema = Type.Array(items, {
    ...(spec.minItems !== undefined ? { minItems: spec.minItems } : {}),
    ...(spec.maxItems !== undefined ? { maxItems: spec.maxItems } : {}),
    ...(spec.unique ? { uniqueItems: true } : {}),
  });
  return describe(schema, spec);
}

/** An object whose unknown fields are errors: a typo must never silently do nothing. */
export function Obj<P extends TProperties>(properties: P, spec: FieldSpec): TObject<P> {
  return describe(Type.Object(properties, { additionalProperties: false }), spec);
}

/** A map from operator-chosen names (upstreams, policies, headers) to values. */
export function MapOf<S extends TSchema>(
  value: S,
  spec: FieldSpec & { readonly keyPattern: string; readonly keyExpected: string },
): TUnsafe<Record<string, Static<S>>> {
  const schema = Type.Unsafe<Record<string, Static<S>>>({
    type: 'object',
    propertyNames: { pattern: spec.keyPattern, 'x-expected': spec.keyExpected },
    additionalProperties: value,
  });
  return describe(schema, spec);
}

/** One of several spellings (`off` or an object). `expected` is the error text when none fits. */
export function AnyOf<const B extends readonly TSchema[]>(branches: B, spec: FieldSpec & { readonly expected: string }): TUnion<[...B]> {
  const schema = Type.Union([...branches], { 'x-expected': spec.expected }) as TUnion<[...B]>;
  return describe(schema, spec);
}

/** `null` is accepted wherever the SPEC writes it as the "unset" value (`clientCa: null`). */
export function OrNull<S extends TSchema>(schema: S, spec: FieldSpec): TUnion<[S, TNull]> {
  const inner = { ...schema } as Record<string, unknown>;
  delete inner['description'];
  delete inner['x-doc'];
  delete inner['x-absent'];
  delete inner['default'];
  return describe(Type.Union([inner as unknown as S, Type.Null()]), spec);
}
