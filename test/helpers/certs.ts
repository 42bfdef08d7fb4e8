// Real certificates for TLS tests, made with the `openssl` CLI in a temporary directory (Node can
// verify X.509 certificates but not create them). A test file creates one TestCerts in beforeAll
// and asks for the leaves it needs there, in parallel: EC P-256 keys by default, so a whole file's
// certificates take a few tens of milliseconds. Everything is removed by dispose().

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args.join(' ')} failed: ${stderr.trim() || String(err)}`);
  }
}

export interface CertPair {
  readonly cert: string;
  readonly key: string;
}

export type KeyKind = 'ec' | 'rsa2048' | 'rsa1024';
export type Issuer = 'ca' | 'clientCa' | 'otherCa' | 'self';

export interface LeafOptions {
  /** subjectAltName DNS entries (wildcards allowed). */
  readonly dns?: readonly string[];
  /** subjectAltName IP entries. */
  readonly ips?: readonly string[];
  /** Subject CN; the first DNS name, else the leaf's file name. */
  readonly cn?: string;
  /** No subjectAltName extension at all (for the CN fallback). */
  readonly noSan?: boolean;
  readonly key?: KeyKind;
  readonly issuer?: Issuer;
  /** `client`: extendedKeyUsage clientAuth instead of serverAuth. */
  readonly usage?: 'server' | 'client';
  /** Valid for this many days from now (default 30). */
  readonly days?: number;
  /** Valid only during 2020-01-01..2020-01-02. */
  readonly expired?: boolean;
}

export class TestCerts {
  /** The CA server certificates are issued by; clients trust it. */
  readonly ca: CertPair;
  /** The CA the gateway trusts for client certificates (mTLS). */
  readonly clientCa: CertPair;
  /** A CA nobody trusts: certificates from the wrong issuer. */
  readonly otherCa: CertPair;

  private constructor(readonly dir: string) {
    this.ca = this.#pair('ca');
    this.clientCa = this.#pair('client-ca');
    this.otherCa = this.#pair('other-ca');
  }

  static async create(): Promise<TestCerts> {
    const dir = await mkdtemp(join(tmpdir(), 'gw-tls-'));
    const certs = new TestCerts(dir);
    await Promise.all([certs.#makeCa('ca', 'Test Server CA'), certs.#makeCa('client-ca', 'Test Client CA'), certs.#makeCa('other-ca', 'Untrusted CA')]);
    return certs;
  }

  /** A certificate and key named `<name>.crt` / `<name>.key` in the directory. */
  async leaf(name: string, options: LeafOptions = {}): Promise<CertPair> {
    const pair = this.#pair(name);
    const work = join(this.dir, `${name}.work`);
    await mkdir(work);
    await this.#makeKey(pair.key, options.key ?? 'ec');
    const cn = options.cn ?? options.dns?.[0] ?? name;
    const san = [...(options.dns ?? []).map((d) => `DNS:${d}`), ...(options.ips ?? []).map((ip) => `IP:${ip}`)];
    const ext = [
      '[ext]',
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      `extendedKeyUsage = ${options.usage === 'client' ? 'clientAuth' : 'serverAuth'}`,
      ...(options.noSan || san.length === 0 ? [] : [`subjectAltName = ${san.join(', ')}`]),
    ];
    await writeFile(join(work, 'ext.cnf'), `${ext.join('\n')}\n`);
    const csr = join(work, 'leaf.csr');
    await openssl(['req', '-new', '-key', pair.key, '-subj', `/O=Gateway Tests/CN=${cn}`, '-out', csr], work);
    const issuer = options.issuer ?? 'ca';
    if (options.expired) {
      await this.#signExpired(csr, issuer, work, pair.cert);
    } else if (issuer === 'self') {
      await openssl(['x509', '-req', '-in', csr, '-key', pair.key, '-days', String(options.days ?? 30), '-set_serial', serial(), '-extfile', 'ext.cnf', '-extensions', 'ext', '-out', pair.cert], work);
    } else {
      const ca = this.#issuer(issuer);
      await openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-days', String(options.days ?? 30), '-set_serial', serial(), '-extfile', 'ext.cnf', '-extensions', 'ext', '-out', pair.cert], work);
    }
    return pair;
  }

  /** A client certificate (clientAuth) issued by the client CA unless told otherwise. */
  client(name: string, options: LeafOptions = {}): Promise<CertPair> {
    return this.leaf(name, { issuer: 'clientCa', usage: 'client', ...options });
  }

  /** Writes an arbitrary file into the directory (broken certificates and the like). */
  async file(name: string, content: string | Buffer): Promise<string> {
    const path = join(this.dir, name);
    await writeFile(path, content);
    return path;
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  #pair(name: string): CertPair {
    return { cert: join(this.dir, `${name}.crt`), key: join(this.dir, `${name}.key`) };
  }

  #issuer(issuer: Exclude<Issuer, 'self'>): CertPair {
    return issuer === 'ca' ? this.ca : issuer === 'clientCa' ? this.clientCa : this.otherCa;
  }

  async #makeKey(file: string, kind: KeyKind): Promise<void> {
    if (kind === 'ec') await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', file], this.dir);
    else await openssl(['genrsa', '-out', file, kind === 'rsa1024' ? '1024' : '2048'], this.dir);
  }

  async #makeCa(name: string, cn: string): Promise<void> {
    const pair = this.#pair(name);
    await this.#makeKey(pair.key, 'ec');
    const cnf = join(this.dir, `${name}.cnf`);
    await writeFile(cnf, [
      '[req]', 'distinguished_name = dn', 'x509_extensions = ext', 'prompt = no',
      '[dn]', `CN = ${cn}`,
      '[ext]', 'basicConstraints = critical, CA:TRUE', 'keyUsage = critical, keyCertSign, cRLSign', 'subjectKeyIdentifier = hash',
    ].join('\n'));
    await openssl(['req', '-new', '-x509', '-config', cnf, '-key', pair.key, '-days', '30', '-set_serial', serial(), '-out', pair.cert], this.dir);
  }

  /** `openssl x509` cannot set past dates before OpenSSL 3.4; `openssl ca` can, with a tiny database. */
  async #signExpired(csr: string, issuer: Issuer, work: string, out: string): Promise<void> {
    if (issuer === 'self') throw new Error('expired certificates are issued by a CA in these tests');
    const ca = this.#issuer(issuer);
    await writeFile(join(work, 'index.txt'), '');
    await writeFile(join(work, 'serial'), `${serial().slice(2)}\n`);
    await writeFile(join(work, 'ca.cnf'), [
      '[ca]', 'default_ca = test',
      '[test]', 'database = index.txt', 'serial = serial', 'new_certs_dir = .', 'default_md = sha256',
      'policy = any', 'unique_subject = no', 'copy_extensions = none',
      '[any]', 'commonName = supplied', 'organizationName = optional',
    ].join('\n'));
    await openssl(['ca', '-batch', '-config', 'ca.cnf', '-cert', ca.cert, '-keyfile', ca.key, '-in', csr, '-out', out,
      '-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-extfile', 'ext.cnf', '-extensions', 'ext', '-notext'], work);
  }
}

/** A random positive serial, as `0x...` (openssl takes hex with the prefix). */
function serial(): string {
  const bytes = randomBytes(8);
  bytes[0] = (bytes[0]! & 0x7f) | 0x10;
  return `0x${bytes.toString('hex')}`;
}
