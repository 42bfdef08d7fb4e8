import { describe, expect, it } from 'vitest';
import { requestIdFor, traceparentFor } from '../../src/proxy/request-id.js';

describe('request ids and trace context', () => {
  it('keeps a client request id of 1-128 safe characters, replaces anything else', () => {
    expect(requestIdFor('abc.DEF_1:2-3')).toBe('abc.DEF_1:2-3');
    expect(requestIdFor('x'.repeat(128))).toBe('x'.repeat(128));
    for (const bad of ['x'.repeat(129), '', 'has space', 'semi;colon', 'ünï']) {
      expect(requestIdFor(bad)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
    expect(requestIdFor(['a', 'b'])).not.toBe('a');
  });

  it('passes a valid traceparent through and starts a new sampled trace otherwise', () => {
    const valid = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    expect(traceparentFor(valid)).toBe(valid);
    const ids = new Set<string>();
    for (const bad of [undefined, '', '00-00000000000000000000000000000000-00f067aa0ba902b7-01', '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', 'garbage']) {
      const fresh = traceparentFor(bad);
      expect(fresh).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      ids.add(fresh);
    }
    for (let i = 0; i < 1000; i++) ids.add(traceparentFor(undefined));
    expect(ids.size).toBe(1005);
  });
});
