// How YAML 1.2 (core schema) reads an unquoted scalar, and how to write a value so that it reads
// back as the same value. Used to re-read interpolated values and to print defaults in the docs.

const CORE_NULL = /^(?:~|null|Null|NULL)?$/;
const CORE_TRUE = /^(?:true|True|TRUE)$/;
const CORE_FALSE = /^(?:false|False|FALSE)$/;
const CORE_INT = /^[-+]?[0-9]+$/;
const CORE_OCT = /^0o[0-7]+$/;
const CORE_HEX = /^0x[0-9a-fA-F]+$/;
const CORE_FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;
const CORE_SPECIAL_FLOAT = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;

/** The value a plain (unquoted) scalar with this text has under the YAML 1.2 core schema. */
export function resolvePlainScalar(text: string): string | number | boolean | null {
  if (CORE_NULL.test(text)) return null;
  if (CORE_TRUE.test(text)) return true;
  if (CORE_FALSE.test(text)) return false;
  if (CORE_INT.test(text)) return Number.parseInt(text, 10);
  if (CORE_OCT.test(text)) return Number.parseInt(text.slice(2), 8);
  if (CORE_HEX.test(text)) return Number.parseInt(text.slice(2), 16);
  if (CORE_FLOAT.test(text)) return Number.parseFloat(text);
  if (CORE_SPECIAL_FLOAT.test(text)) return Number.parseFloat(text.replace(/\.(inf|Inf|INF)/, 'Infinity').replace(/^\.(nan|NaN|NAN)$/, 'NaN'));
  return text;
}

/** Plain data YAML can spell. */
export type YamlValue = string | number | boolean | null | readonly YamlValue[] | { readonly [key: string]: YamlValue };

// Characters that never start or end a structure in flow style, so a string of them can go unquoted.
const FLOW_SAFE = /^[A-Za-z0-9_./%+-][A-Za-z0-9_./%+:-]*$/;

/** A value in YAML flow style: `10s`, `[GET, HEAD]`, `"gw:"`, `{}`. */
export function yamlFlow(value: YamlValue): string {
  if (value === null) return 'null';
  if (typeof value === 'string') {
    const plain = FLOW_SAFE.test(value) && !value.endsWith(':') && resolvePlainScalar(value) === value;
    return plain ? value : JSON.stringify(value);
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `[${value.map((item) => yamlFlow(item)).join(', ')}]`;
  const entries = Object.entries(value as Readonly<Record<string, YamlValue>>);
  return entries.length === 0 ? '{}' : `{ ${entries.map(([k, v]) => `${k}: ${yamlFlow(v)}`).join(', ')} }`;
}
