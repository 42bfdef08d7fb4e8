// Durations, sizes and percentages as operators write them. The patterns below are the single
// source of truth: the JSON Schema uses them (so editors flag a bad value as it is typed) and the
// readers accept exactly the same spellings, so the editor and `gateway validate` never disagree.

import { GatewayError } from '../errors.js';
import type { Bytes, DurationMs } from './types.js';

/** One or more `<number><unit>` parts, Go style: `250ms`, `10s`, `1.5m`, `1h30m`. */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$';
/** A number and a binary unit, any letter case: `512b`, `16kb`, `10mb`, `1gb`, `16KiB`. */
export const SIZE_PATTERN = '^[0-9]+(\\.[0-9]+)?([kKmMgG][iI]?)?[bB]$';
/** `0%` to `100%`, decimals allowed (`0.5%`). The plain-number spelling is checked by range instead. */
export const PERCENT_PATTERN = '^(100(\\.0+)?|[0-9]{1,2}(\\.[0-9]+)?)%$';

export const DURATION_EXAMPLE = 'a duration like 250ms, 10s, 5m, 1h';
export const SIZE_EXAMPLE = 'a size like 512b, 16kb, 10mb, 1gb';
export const PERCENT_EXAMPLE = 'a percentage like 50% or a number from 0 to 100';

export type UnitReading = { readonly ok: true; readonly value: number } | { readonly ok: false; readonly problem: string };

const DURATION_UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const SIZE_UNIT_BYTES: Readonly<Record<string, number>> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

const durationRe = new RegExp(DURATION_PATTERN);
const durationPartRe = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g;
const sizeRe = new RegExp(SIZE_PATTERN);
const percentRe = new RegExp(PERCENT_PATTERN);

/** Reads a duration without throwing; `problem` is an operator-facing sentence. */
export function readDuration(text: string): UnitReading {
  if (!durationRe.test(text)) {
    return { ok: false, problem: `"${text}" is not a duration: expected ${DURATION_EXAMPLE}` };
  }
  let ms = 0;
  for (const part of text.matchAll(durationPartRe)) {
    ms += Number(part[1]) * (DURATION_UNIT_MS[part[2] ?? ''] ?? Number.NaN);
  }
  // Sub-millisecond values would be silently rounded by every timer in Node: refuse them instead.
  const rounded = Math.round(ms * 1e6) / 1e6;
  if (!Number.isInteger(rounded)) {
    return { ok: false, problem: `"${text}" is not a whole number of milliseconds` };
  }
  if (!Number.isSafeInteger(rounded)) return { ok: false, problem: `"${text}" is too long` };
  return { ok: true, value: rounded };
}

/** Reads a size without throwing; 1kb = 1024 bytes (`kib` is accepted as the same unit). */
export function readSize(text: string): UnitReading {
  if (!sizeRe.test(text)) {
    return { ok: false, problem: `"${text}" is not a size: expected ${SIZE_EXAMPLE}` };
  }
  const match = /^([0-9]+(?:\.[0-9]+)?)(.*)$/.exec(text);
  const unit = (match?.[2] ?? '').toLowerCase().replace('i', '');
  const bytes = Math.round(Number(match?.[1]) * (SIZE_UNIT_BYTES[unit] ?? Number.NaN) * 1e6) / 1e6;
  if (!Number.isInteger(bytes)) return { ok: false, problem: `"${text}" is not a whole number of bytes` };
  if (!Number.isSafeInteger(bytes)) return { ok: false, problem: `"${text}" is too large` };
  return { ok: true, value: bytes };
}

/** Reads `50%` or a plain number 0–100 without throwing; the result is 0..100. */
export function readPercent(value: string | number): UnitReading {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0 && value <= 100) return { ok: true, value };
    return { ok: false, problem: `${value} is not a percentage: expected ${PERCENT_EXAMPLE}` };
  }
  if (!percentRe.test(value)) {
    return { ok: false, problem: `"${value}" is not a percentage: expected ${PERCENT_EXAMPLE}` };
  }
  return { ok: true, value: Number(value.slice(0, -1)) };
}

function orThrow(reading: UnitReading): number {
  if (!reading.ok) throw new GatewayError('GW_ERR_CONFIG_INVALID', [reading.problem]);
  return reading.value;
}

/** `250ms` → 250, `1h30m` → 5400000. Throws GW_ERR_CONFIG_INVALID naming the bad value. */
export function parseDuration(text: string): DurationMs {
  return orThrow(readDuration(text));
}

/** `16kb` → 16384. Throws GW_ERR_CONFIG_INVALID naming the bad value. */
export function parseSize(text: string): Bytes {
  return orThrow(readSize(text));
}

/** `50%` or `50` → 50. Throws GW_ERR_CONFIG_INVALID naming the bad value. */
export function parsePercent(value: string | number): number {
  return orThrow(readPercent(value));
}
