import { describe, expect, it } from 'vitest';
import { TrustedProxies, peerAddress } from '../../src/proxy/client-address.js';

describe('TrustedProxies', () => {
  const trusted = new TrustedProxies(['10.0.0.0/8', '192.168.1.1', 'fd00::/8']);

  it('ignores X-Forwarded-For from an untrusted peer', () => {
    expect(trusted.clientAddress('203.0.113.9', '1.2.3.4')).toBe('203.0.113.9');
  });

  it('takes the right-most untrusted hop from a trusted peer (real_ip_recursive)', () => {
    expect(trusted.clientAddress('10.1.1.1', '1.2.3.4, 198.51.100.2, 10.2.2.2')).toBe('198.51.100.2');
    expect(trusted.clientAddress('192.168.1.1', '1.2.3.4')).toBe('1.2.3.4');
    expect(trusted.clientAddress('fd00::1', '2001:db8::5')).toBe('2001:db8::5');
  });

  it('falls back to the peer when the header is garbage, and to the first hop when all are trusted', () => {
    expect(trusted.clientAddress('10.1.1.1', 'not-an-ip')).toBe('10.1.1.1');
    expect(trusted.clientAddress('10.1.1.1', '10.3.3.3, 10.4.4.4')).toBe('10.3.3.3');
  });

  it('trusts nobody when the list is empty', () => {
    const none = new TrustedProxies([]);
    expect(none.isTrusted('127.0.0.1')).toBe(false);
    expect(none.clientAddress('127.0.0.1', '1.2.3.4')).toBe('127.0.0.1');
  });

  it('unmaps IPv4-mapped IPv6 peers', () => {
    expect(peerAddress('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(peerAddress('::1')).toBe('::1');
    expect(peerAddress(undefined)).toBe('');
  });
});
