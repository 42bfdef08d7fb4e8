import { createPrivateKey, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListenerTlsConfig } from '../../src/config/types.js';
import { ConfigError } from '../../src/errors.js';
import { loadCertificateSet, readSubjectAltName, type CertificateSet, type LoadOptions } from '../../src/tls/certificates.js';
import { type CertPair, TestCerts } from '../helpers/certs.js';

const context = { sessionIdContext: 'tests', ticketKeys: randomBytes(48) };
const DAY = 24 * 60 * 60 * 1000;

function tlsConfig(certificates: readonly CertPair[], extra: Partial<ListenerTlsConfig> = {}): ListenerTlsConfig {
  return { certificates, minVersion: 'TLSv1.2', http2: false, clientCa: null, ...extra };
}

function load(certificates: readonly CertPair[], extra: Partial<ListenerTlsConfig> = {}, options: Partial<LoadOptions> = {}): Promise<CertificateSet> {
  return loadCertificateSet(tlsConfig(certificates, extra), { path: 'listeners[0].tls', context, ...options });
}

async function refusal(promise: Promise<unknown>): Promise<ConfigError> {
  const err = await promise.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

describe('loading certificate pairs', () => {
  let certs: TestCerts;
  let main: CertPair;
  let cnOnly: CertPair;
  let rsa2048: CertPair;
  let rsa1024: CertPair;
  let expired: CertPair;
  let shortLived: CertPair;
  let other: CertPair;
  let twin: CertPair;

  beforeAll(async () => {
    certs = await TestCerts.create();
    [main, cnOnly, rsa2048, rsa1024, expired, shortLived, other, twin] = await Promise.all([
      certs.leaf('main', { dns: ['a.example.com', '*.Wild.Example.com', 'trailing.example.com.'], ips: ['127.0.0.1', '::1'] }),
      certs.leaf('cn-only', { cn: 'Legacy.Example.com', noSan: true }),
      certs.leaf('rsa2048', { dns: ['rsa.example.com'], key: 'rsa2048' }),
      certs.leaf('rsa1024', { dns: ['weak.example.com'], key: 'rsa1024' }),
      certs.leaf('expired', { dns: ['old.example.com'], expired: true }),
      certs.leaf('short', { dns: ['short.example.com'], days: 3 }),
      certs.leaf('other', { dns: ['other.example.com'] }),
      certs.leaf('twin', { dns: ['a.example.com', 'twin.example.com'] }),
    ]);
  });

  afterAll(async () => {
    await certs.dispose();
  });

  it('reads the SAN: DNS names (normalised, wildcards kept) and IP addresses in canonical form', async () => {
    const set = await load([main]);
    const [cert] = set.certificates;
    expect(cert!.dnsNames).toEqual(['a.example.com', '*.wild.example.com', 'trailing.example.com']);
    expect(cert!.ipAddresses).toEqual(['127.0.0.1', '::1']);
    expect(cert!.names).toEqual(['a.example.com', '*.wild.example.com', 'trailing.example.com', '127.0.0.1', '::1']);
    expect(cert!.namesFrom).toBe('subjectAltName');
    expect(cert!.keyType).toBe('ec prime256v1');
    expect(cert!.subject).toContain('CN=a.example.com');
    expect(cert!.certFile).toBe(main.cert);
    expect(set.warnings).toEqual([]);
    expect(set.clientCa).toBeNull();
  });

  it('falls back to the subject CN only when there is no SAN', async () => {
    const set = await load([cnOnly]);
    expect(set.certificates[0]!.names).toEqual(['legacy.example.com']);
    expect(set.certificates[0]!.namesFrom).toBe('commonName');
  });

  it('accepts RSA-2048', async () => {
    const set = await load([rsa2048]);
    expect(set.certificates[0]!.keyType).toBe('rsa 2048');
  });

  it('refuses RSA keys under 2048 bits, naming the key file', async () => {
    const err = await refusal(load([rsa1024]));
    expect(err.code).toBe('GW_ERR_CONFIG_INVALID');
    expect(err.issues).toEqual([
      expect.objectContaining({ file: rsa1024.key, path: 'listeners[0].tls.certificates[0].key', message: expect.stringMatching(/1024 bits; at least 2048/) }),
    ]);
    expect(err.message).toContain(rsa1024.key);
  });

  it('refuses a key that does not belong to the certificate, naming both files', async () => {
    const err = await refusal(load([{ cert: main.cert, key: other.key }]));
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0]).toMatchObject({ file: other.key, path: 'listeners[0].tls.certificates[0].key' });
    expect(err.issues[0]!.message).toContain(`does not belong to the certificate ${main.cert}`);
  });

  it('refuses an expired certificate with its expiry date', async () => {
    const err = await refusal(load([expired]));
    expect(err.issues).toEqual([
      expect.objectContaining({ file: expired.cert, path: 'listeners[0].tls.certificates[0].cert', message: expect.stringMatching(/expired on 2020-01-02T00:00:00\.000Z/) }),
    ]);
  });

  it('warns about a certificate close to expiry and one not yet valid', async () => {
    const soon = await load([shortLived]);
    expect(soon.warnings).toEqual([expect.objectContaining({ file: shortLived.cert, message: expect.stringMatching(/expires in [23] days/) })]);
    const early = await load([main], {}, { now: Date.now() - 2 * DAY });
    expect(early.warnings).toEqual([expect.objectContaining({ file: main.cert, message: expect.stringMatching(/not valid before .*check the clock/) })]);
  });

  it('names an unreadable file and one with no certificate in it', async () => {
    const garbage = await certs.file('garbage.crt', 'this is not a certificate\n');
    const missing = certs.path('missing.crt');
    const err = await refusal(load([{ cert: missing, key: main.key }, { cert: garbage, key: main.key }]));
    expect(err.issues).toEqual([
      expect.objectContaining({ file: missing, path: 'listeners[0].tls.certificates[0].cert', message: expect.stringContaining('cannot read the certificate file (ENOENT)') }),
      expect.objectContaining({ file: garbage, path: 'listeners[0].tls.certificates[1].cert', message: expect.stringContaining('no PEM certificate') }),
    ]);
  });

  it('names a key file holding no key, and an encrypted key', async () => {
    const encrypted = await certs.file('encrypted.key', createPrivateKey(await readFile(main.key)).export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'secret' }));
    const err = await refusal(load([{ cert: main.cert, key: main.cert }, { cert: main.cert, key: encrypted }]));
    expect(err.issues).toEqual([
      expect.objectContaining({ file: main.cert, path: 'listeners[0].tls.certificates[0].key', message: expect.stringContaining('no usable PEM private key') }),
      expect.objectContaining({ file: encrypted, path: 'listeners[0].tls.certificates[1].key', message: expect.stringContaining('encrypted') }),
    ]);
  });

  it('reports every bad pair at once, in configuration order, and loads nothing', async () => {
    const err = await refusal(load([main, expired, rsa1024, { cert: main.cert, key: other.key }]));
    expect(err.issues.map((i) => i.path)).toEqual([
      'listeners[0].tls.certificates[1].cert',
      'listeners[0].tls.certificates[2].key',
      'listeners[0].tls.certificates[3].key',
    ]);
  });

  it('loads a certificate file holding the chain, leaf first', async () => {
    const chained = await certs.file('chained.crt', Buffer.concat([await readFile(other.cert), await readFile(certs.ca.cert)]));
    const set = await load([{ cert: chained, key: other.key }]);
    expect(set.certificates[0]!.names).toEqual(['other.example.com']);
    expect(set.warnings).toEqual([]);
    const reversed = await certs.file('reversed.crt', Buffer.concat([await readFile(other.cert), await readFile(main.cert)]));
    const odd = await load([{ cert: reversed, key: other.key }]);
    expect(odd.warnings).toEqual([expect.objectContaining({ file: reversed, message: expect.stringContaining('did not issue') })]);
  });

  it('warns when a later pair serves names an earlier one already serves', async () => {
    const set = await load([main, twin, { cert: main.cert, key: main.key }]);
    expect(set.warnings).toEqual([
      expect.objectContaining({ file: twin.cert, path: 'listeners[0].tls.certificates[1].cert', message: expect.stringContaining('a.example.com (certificates[0])') }),
      expect.objectContaining({ file: main.cert, path: 'listeners[0].tls.certificates[2].cert', message: expect.stringContaining('SNI never selects this certificate') }),
    ]);
  });

  it('loads a client CA bundle and refuses a file without certificates', async () => {
    const set = await load([main], { clientCa: certs.clientCa.cert });
    expect(set.clientCa?.subjects).toEqual(['CN=Test Client CA']);
    const err = await refusal(load([main], { clientCa: main.key }));
    expect(err.issues).toEqual([expect.objectContaining({ file: main.key, path: 'listeners[0].tls.clientCa', message: expect.stringContaining('no PEM certificate') })]);
  });

  it('needs at least one certificate', async () => {
    const err = await refusal(loadCertificateSet(tlsConfig([]), { configFile: '/etc/gateway.yaml', context }));
    expect(err.issues).toEqual([expect.objectContaining({ file: '/etc/gateway.yaml', path: 'tls.certificates' })]);
  });
});

describe('readSubjectAltName', () => {
  it('splits Node\'s format, honouring quoted values, and sets aside names SNI cannot match', () => {
    const san = readSubjectAltName('DNS:a.example.com, DNS:"b,c.example.com", DNS:f*.example.com, IP Address:0:0:0:0:0:0:0:1, email:x@example.com, URI:spiffe://x/y, DNS:*.Example.NET.');
    expect(san.dnsNames).toEqual(['a.example.com', '*.example.net']);
    expect(san.ipAddresses).toEqual(['::1']);
    expect(san.unusable).toEqual(['b,c.example.com', 'f*.example.com']);
    expect(readSubjectAltName(undefined)).toEqual({ dnsNames: [], ipAddresses: [], unusable: [] });
  });
});
