/**
 * A private CA and a server certificate for 127.0.0.1 signed by it, for fakes that must speak TLS
 * (MSAL refuses a plain-HTTP authority; ACR's token exchange is HTTPS): clients trust the CA the
 * way a pod trusts a private CA, instead of turning verification off.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestPki {
  /** PEM of the CA that signed `cert`. */
  ca: string;
  cert: string;
  key: string;
}

export async function makeTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'imc-pki-'));
  const f = (n: string): string => join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  try {
    await run('openssl', ['req', '-x509', ...ec, '-days', '1', '-subj', '/CN=imc test CA', '-keyout', f('ca.key'), '-out', f('ca.crt'),
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    await run('openssl', ['req', ...ec, '-subj', '/CN=127.0.0.1', '-keyout', f('leaf.key'), '-out', f('leaf.csr')]);
    await writeFile(f('ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
    await run('openssl', ['x509', '-req', '-in', f('leaf.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1', '-out', f('leaf.crt'), '-extfile', f('ext')]);
    const [ca, cert, key] = await Promise.all([readFile(f('ca.crt'), 'utf8'), readFile(f('leaf.crt'), 'utf8'), readFile(f('leaf.key'), 'utf8')]);
    return { ca, cert, key };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
