// `node dist/scripts/make-dev-cert.js [--force] [--dir <dir>]`: a self-signed certificate for
// trying the HTTPS listener locally, written to config/tls/dev.crt and config/tls/dev.key.
// SANs localhost, 127.0.0.1 and ::1; ECDSA P-256; valid 825 days (the longest macOS and iOS
// accept for a TLS server certificate). Trust it with `curl --cacert config/tls/dev.crt`.
//
// Why the openssl CLI: Node can parse and verify X.509 certificates (X509Certificate) but has no
// API to create or sign one, and the gateway takes no dependency for a development convenience.
// Only commands that OpenSSL 1.1.1+, 3.x and LibreSSL share are used (`ecparam -genkey`,
// `req -new -x509 -config`), so the macOS system openssl works too.
//
// Idempotent: an existing pair that still parses, belongs together and has not expired is kept
// (the demo calls this on every run); `--force` replaces it. A broken, mismatched or expired pair
// is replaced, and the reason printed. The files are written beside the targets and renamed into
// place, so a reader never sees a certificate without its key; the key is 0600.

import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const DEV_CERT_DAYS = 825;
export const DEV_CERT_NAMES = ['localhost', '127.0.0.1', '::1'] as const;

export interface DevCertOptions {
  /** Where dev.crt and dev.key go; `<repository>/config/tls` by default. */
  readonly dir?: string;
  /** Replace a valid existing pair. */
  readonly force?: boolean;
  /** Where progress lines go; console.log by default. */
  readonly log?: (line: string) => void;
}

export interface DevCertResult {
  readonly cert: string;
  readonly key: string;
  /** `kept`: a valid pair was already there. */
  readonly action: 'created' | 'replaced' | 'kept';
  readonly validTo: Date;
}

export async function makeDevCert(options: DevCertOptions = {}): Promise<DevCertResult> {
  const dir = resolve(options.dir ?? join(repositoryRoot(), 'config', 'tls'));
  const log = options.log ?? ((line: string) => console.log(line));
  const cert = join(dir, 'dev.crt');
  const key = join(dir, 'dev.key');
  const shown = `${display(cert)} and ${display(key)}`;

  const existing = await inspectExisting(cert, key);
  if (existing.state === 'valid' && !options.force) {
    log(`${shown} already exist (valid until ${existing.validTo.toISOString()}): kept; --force replaces them`);
    return { cert, key, action: 'kept', validTo: existing.validTo };
  }

  await mkdir(dir, { recursive: true });
  const work = await mkdtemp(join(dir, '.dev-cert-'));
  try {
    const newKey = join(work, 'dev.key');
    const newCert = join(work, 'dev.crt');
    const config = join(work, 'openssl.cnf');
    await writeFile(config, OPENSSL_CONFIG);
    await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', newKey]);
    await chmod(newKey, 0o600);
    await openssl(['req', '-new', '-x509', '-config', config, '-key', newKey, '-days', String(DEV_CERT_DAYS), '-sha256', '-out', newCert]);
    const validTo = new Date(new X509Certificate(await readFile(newCert)).validTo);
    // Two renames are not atomic together: a run cut between them leaves a mismatched pair,
    // which the next run detects and replaces.
    await rename(newKey, key);
    await rename(newCert, cert);
    const action = existing.state === 'missing' ? 'created' : 'replaced';
    const why = existing.state === 'missing' ? '' : existing.state === 'valid' ? ' (--force)' : ` (the old pair ${existing.reason})`;
    log(`${action === 'created' ? 'wrote' : 'replaced'} ${shown}${why}: self-signed, ECDSA P-256, SANs ${DEV_CERT_NAMES.join(', ')}, valid until ${validTo.toISOString()}`);
    log(`trust it for a test with: curl --cacert ${display(cert)} https://localhost:<port>/`);
    return { cert, key, action, validTo };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

const OPENSSL_CONFIG = `[req]
distinguished_name = dn
x509_extensions = ext
prompt = no
[dn]
O = edge-gateway development
CN = localhost
[ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = ${DEV_CERT_NAMES.map((name) => (name.includes(':') || /^\d/.test(name) ? `IP:${name}` : `DNS:${name}`)).join(', ')}
subjectKeyIdentifier = hash
`;

type Existing = { state: 'missing' } | { state: 'valid'; validTo: Date } | { state: 'broken'; reason: string };

async function inspectExisting(certFile: string, keyFile: string): Promise<Existing> {
  const haveCert = existsSync(certFile);
  const haveKey = existsSync(keyFile);
  if (!haveCert && !haveKey) return { state: 'missing' };
  if (!haveCert || !haveKey) return { state: 'broken', reason: `lacked its ${haveCert ? 'key' : 'certificate'}` };
  try {
    const cert = new X509Certificate(await readFile(certFile));
    const key = createPrivateKey(await readFile(keyFile));
    if (!cert.checkPrivateKey(key)) return { state: 'broken', reason: 'had a key not matching the certificate' };
    const validTo = new Date(cert.validTo);
    if (validTo.getTime() <= Date.now()) return { state: 'broken', reason: `expired on ${validTo.toISOString()}` };
    return { state: 'valid', validTo };
  } catch (err) {
    return { state: 'broken', reason: `could not be read (${err instanceof Error ? err.message : String(err)})` };
  }
}

async function openssl(args: readonly string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error('the openssl command is needed to make a development certificate and was not found on PATH');
    throw new Error(`openssl ${args[0]} failed: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

/** The directory holding package.json, from scripts/ (source) or dist/scripts/ (compiled). */
function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}

function display(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel.startsWith('..') || rel === '' ? file : rel;
}

function parseArgs(argv: readonly string[]): DevCertOptions {
  let force = false;
  let dir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--force') force = true;
    else if (arg === '--dir' && argv[i + 1] !== undefined) dir = argv[++i];
    else throw new Error(`usage: make-dev-cert [--force] [--dir <dir>] (unexpected ${JSON.stringify(arg)})`);
  }
  return { force, ...(dir === undefined ? {} : { dir }) };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  Promise.resolve().then(() => makeDevCert(parseArgs(process.argv.slice(2)))).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  });
}
