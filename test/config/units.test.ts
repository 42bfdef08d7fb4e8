import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors.js';
import { parseDuration, parsePercent, parseSize, readDuration } from '../../src/config/units.js';

describe('parseDuration', () => {
  it.each([
    ['0s', 0],
    ['250ms', 250],
    ['10s', 10_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1m30s500ms', 90_500],
    ['1.5s', 1500],
    ['0.25m', 15_000],
  ])('reads %s as %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['10', '', 's', '10 s', '10sec', '-1s', '1d', '10S', '1.s', ' 10s'])('refuses %j with the accepted forms', (text) => {
    expect(() => parseDuration(text)).toThrow(GatewayError);
    expect(() => parseDuration(text)).toThrow(`"${text}" is not a duration: expected a duration like 250ms, 10s, 5m, 1h`);
  });

  it('refuses sub-millisecond precision instead of rounding it away', () => {
    expect(readDuration('1.5ms')).toEqual({ ok: false, problem: '"1.5ms" is not a whole number of milliseconds' });
  });

  it('refuses durations no timer could hold', () => {
    expect(() => parseDuration('99999999999999999h')).toThrow('is too long');
  });

  it('throws with the config error code', () => {
    try {
      parseDuration('x');
      expect.unreachable();
    } catch (err) {
      expect((err as GatewayError).code).toBe('GW_ERR_CONFIG_INVALID');
    }
  });
});

describe('parseSize', () => {
  it.each([
    ['0b', 0],
    ['512b', 512],
    ['1kb', 1024],
    ['16kb', 16_384],
    ['10mb', 10_485_760],
    ['1gb', 1_073_741_824],
    ['16KB', 16_384],
    ['16KiB', 16_384],
    ['1.5kb', 1536],
  ])('reads %s as %i bytes (binary units)', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each(['16', '16k', '16 kb', 'kb', '1tb', '-1kb'])('refuses %j', (text) => {
    expect(() => parseSize(text)).toThrow(`"${text}" is not a size: expected a size like 512b, 16kb, 10mb, 1gb`);
  });

  it('refuses fractions of a byte', () => {
    expect(() => parseSize('1.5b')).toThrow('"1.5b" is not a whole number of bytes');
  });
});

describe('parsePercent', () => {
  it.each([
    ['50%', 50],
    ['0%', 0],
    ['100%', 100],
    ['0.5%', 0.5],
    [50, 50],
    [0.1, 0.1],
    [0, 0],
    [100, 100],
  ] as const)('reads %j as %d', (value, percent) => {
    expect(parsePercent(value)).toBe(percent);
  });

  it.each(['50', '101%', '-1%', '%', 'half'])('refuses the string %j', (value) => {
    expect(() => parsePercent(value)).toThrow(`"${value}" is not a percentage: expected a percentage like 50% or a number from 0 to 100`);
  });

  it.each([101, -1, Number.NaN])('refuses the number %d', (value) => {
    expect(() => parsePercent(value)).toThrow('is not a percentage');
  });
});
