import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_CERT_DAYS, makeDevCert } from '../../scripts/make-dev-cert.js';
import { loadCertificateSet } from '../../src/tls/certificates.js';
import { TlsTerminator } from '../../src/tls/terminator.js';
import { greet, greetingServer, pem } from '../helpers/tls-clients.js';

const DAY = 24 * 60 * 60 * 1000;

describe('make-dev-cert', () => {
  let dir: string;
  const lines: string[] = [];
  const log = (line: string): void => {
    lines.push(line);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gw-dev-cert-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a self-signed pair for localhost, 127.0.0.1 and ::1 that the loader accepts', async () => {
    const result = await makeDevCert({ dir, log });
    expect(result).toMatchObject({ cert: join(dir, 'dev.crt'), key: join(dir, 'dev.key'), action: 'created' });
    expect(lines.join('\n')).toMatch(/wrote .*dev\.crt and .*dev\.key: self-signed, ECDSA P-256, SANs localhost, 127\.0\.0\.1, ::1/);
    expect((await stat(result.key)).mode & 0o777).toBe(0o600);
    expect(Math.abs(result.validTo.getTime() - (Date.now() + DEV_CERT_DAYS * DAY))).toBeLessThan(DAY);

    const set = await loadCertificateSet(
      { certificates: [{ cert: result.cert, key: result.key }], minVersion: 'TLSv1.2', http2: true, clientCa: null },
      { context: { sessionIdContext: 'dev', ticketKeys: randomBytes(48) } },
    );
    expect(set.certificates[0]).toMatchObject({ names: ['localhost', '127.0.0.1', '::1'], keyType: 'ec prime256v1' });
    expect(set.warnings).toEqual([]);
  });

  it('serves handshakes a client trusting dev.crt verifies, by name and by IP', async () => {
    const cert = join(dir, 'dev.crt');
    const terminator = await TlsTerminator.load({ certificates: [{ cert, key: join(dir, 'dev.key') }], minVersion: 'TLSv1.2', http2: false, clientCa: null });
    const srv = await greetingServer(terminator.serverOptions());
    try {
      for (const servername of ['localhost', undefined]) {
        const { socket } = await greet(srv.port, { ca: pem(cert), rejectUnauthorized: true, ...(servername ? { servername } : {}) });
        expect(socket.authorized).toBe(true);
        socket.destroy();
      }
    } finally {
      await srv.close();
    }
  });

  it('keeps a valid pair, and replaces it with --force', async () => {
    const before = pem(join(dir, 'dev.crt'));
    expect((await makeDevCert({ dir, log })).action).toBe('kept');
    expect(pem(join(dir, 'dev.crt')).equals(before)).toBe(true);
    expect(lines.at(-1)).toMatch(/already exist .*kept; --force replaces them/);
    expect((await makeDevCert({ dir, log, force: true })).action).toBe('replaced');
    expect(pem(join(dir, 'dev.crt')).equals(before)).toBe(false);
  });

  it('replaces a broken pair and says why', async () => {
    await writeFile(join(dir, 'dev.key'), 'not a key\n');
    expect((await makeDevCert({ dir, log })).action).toBe('replaced');
    expect(lines.join('\n')).toContain('(the old pair could not be read');
    await rm(join(dir, 'dev.key'));
    expect((await makeDevCert({ dir, log })).action).toBe('replaced');
    expect(lines.join('\n')).toContain('(the old pair lacked its key)');
  });
});
