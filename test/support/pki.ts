/**
 * A throwaway PKI made with openssl for TLS tests: a private CA, a server certificate for
 * 127.0.0.1 (and `localhost`, plus any extra DNS names) signed by it, and a separate client CA with
 * one client certificate. EC P-256 keys: generated in milliseconds, and accepted by Go's TLS stack
 * (docker-registry) as well as Node's.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
/** Certificates live a day: tests never outlast that, and a leaked file is useless soon after. */
const VALIDITY_DAYS = '1';

export interface KeyPair {
  /** PEM file paths. */
  cert: string;
  key: string;
  certPem: string;
  keyPem: string;
}

export interface TestPki {
  dir: string;
  /** The CA that signed `server`. */
  ca: KeyPair;
  /** serverAuth certificate for IP 127.0.0.1, DNS localhost and `dnsNames`. */
  server: KeyPair;
  /** The CA a registry requiring client certificates trusts. */
  clientCa: KeyPair;
  /** clientAuth certificate signed by `clientCa`. */
  client: KeyPair;
  /** A CA that signed nothing here: trusting it alone must not verify `server`. */
  unrelatedCa: KeyPair;
  remove(): Promise<void>;
}

async function openssl(args: string[]): Promise<void> {
  await execFileP('openssl', args);
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function pair(dir: string, name: string): Promise<KeyPair> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  return { cert, key, certPem: await readFile(cert, 'utf8'), keyPem: await readFile(key, 'utf8') };
}

async function makeCa(dir: string, name: string, cn: string): Promise<KeyPair> {
  await openssl([
    'req', '-x509', ...EC_KEY, '-days', VALIDITY_DAYS, '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`),
  ]);
  return pair(dir, name);
}

async function makeLeaf(dir: string, name: string, cn: string, ca: KeyPair, extensions: string): Promise<KeyPair> {
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  await writeFile(ext, extensions);
  await openssl(['req', '-new', ...EC_KEY, '-subj', `/CN=${cn}`, '-keyout', join(dir, `${name}.key`), '-out', csr]);
  await openssl([
    'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial',
    '-days', VALIDITY_DAYS, '-extfile', ext, '-out', join(dir, `${name}.crt`),
  ]);
  return pair(dir, name);
}

export async function createPki(o: { dnsNames?: string[] } = {}): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'imc-pki-'));
  try {
    const [ca, clientCa, unrelatedCa] = await Promise.all([
      makeCa(dir, 'ca', 'imc test CA'),
      makeCa(dir, 'client-ca', 'imc test client CA'),
      makeCa(dir, 'unrelated-ca', 'imc unrelated CA'),
    ]);
    const san = ['IP:127.0.0.1', 'DNS:localhost', ...(o.dnsNames ?? []).map((n) => `DNS:${n}`)].join(',');
    const [server, client] = await Promise.all([
      makeLeaf(dir, 'server', '127.0.0.1', ca, `subjectAltName=${san}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`),
      makeLeaf(dir, 'client', 'imc test client', clientCa, 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n'),
    ]);
    return { dir, ca, server, clientCa, client, unrelatedCa, remove: () => rm(dir, { recursive: true, force: true }) };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
