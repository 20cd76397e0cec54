/**
 * Docker `config.json` (and `kubernetes.io/dockerconfigjson` Secrets, which carry the same
 * `auths` object): static credentials, per-registry `credHelpers` and the global `credsStore`,
 * which run `docker-credential-<name> get` the way the docker CLI does.
 *
 * Keys are normalized to canonical registries (`https://index.docker.io/v1/`, `index.docker.io`,
 * `registry-1.docker.io` and `docker.io` are all `docker.io`; scheme and path are dropped), so a
 * lookup by canonical registry finds whatever form `docker login` or a human wrote.
 * Within one config, like the docker CLI: a `credHelpers` entry decides alone; otherwise
 * `credsStore` is asked and `auths` is the fallback. Errors are one line and never carry a secret.
 */
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { rememberCredential, type Credential, type CredentialProvider } from './credentials.js';
import { registerSecret } from './redact.js';
import { canonicalRegistry, DOCKER_HUB } from './reference.js';

export interface DockerConfig {
  /** Canonical registry → credential; entries without a usable secret are left out. */
  auths: Record<string, Credential>;
  /** Canonical registry → helper name (`ecr-login` runs `docker-credential-ecr-login`). */
  credHelpers: Record<string, string>;
  credsStore?: string;
  /** Where this config came from, for error messages. */
  source?: string;
}

/**
 * A per-process key for content digests: a digest of a config that holds a short password is then
 * useless for guessing it offline, even if one ever left the process.
 */
const DIGEST_KEY = randomBytes(32);

/** 16 hex digits identifying `text` within this process, never reversible to it. */
export function contentDigest(text: string): string {
  return createHmac('sha256', DIGEST_KEY).update(text).digest('hex').slice(0, 16);
}

const HUB_SERVER_URL = 'https://index.docker.io/v1/';
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const HELPER_TIMEOUT_MS = 30_000;
const HELPER_CACHE_MS = 5 * 60_000;

/** `https://host:port/v1/`, `http://host/v2/`, `host:port` → canonical registry. */
export function normalizeConfigKey(key: string): string {
  let k = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = k.indexOf('/');
  if (slash >= 0) k = k.slice(0, slash);
  return canonicalRegistry(k);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function entryCredential(e: Record<string, unknown>, where: string): Credential | undefined {
  let username = str(e.username);
  let password = str(e.password);
  const auth = str(e.auth);
  // As written, whatever its padding or whitespace: this exact text may be quoted back.
  registerSecret(auth);
  if (auth !== undefined) {
    const decoded = Buffer.from(auth, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (!/^[A-Za-z0-9+/=\s_-]+$/.test(auth) || i < 0) throw new Error(`${where}.auth is not base64 of "username:password"`);
    username = decoded.slice(0, i);
    password = decoded.slice(i + 1);
  }
  const registryToken = str(e.registrytoken);
  if (registryToken !== undefined) return { kind: 'registryToken', registryToken };
  const identityToken = str(e.identitytoken);
  if (identityToken !== undefined) {
    return username !== undefined && username !== '<token>' ? { kind: 'identityToken', username, identityToken } : { kind: 'identityToken', identityToken };
  }
  if (username !== undefined && password !== undefined) return { kind: 'basic', username, password };
  return undefined;
}

/** Parses a config.json (or dockerconfigjson) text. Throws a one-line Error naming `source`. */
export function parseDockerConfig(json: string, source: string): DockerConfig {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (e) {
    // V8's message quotes the text around the error, which may be a secret: report the position only.
    const pos = /position (\d+)/.exec(e instanceof Error ? e.message : '');
    const where = pos ? ` at line ${json.slice(0, Number(pos[1])).split('\n').length}` : '';
    throw new Error(`${source}: not valid JSON${where}`);
  }
  if (!isObject(v)) throw new Error(`${source}: expected a JSON object`);
  const out: DockerConfig = { auths: {}, credHelpers: {}, source };
  if (v.auths !== undefined) {
    if (!isObject(v.auths)) throw new Error(`${source}: "auths" must be an object`);
    for (const [key, entry] of Object.entries(v.auths)) {
      const where = `${source}: auths[${JSON.stringify(key)}]`;
      if (!isObject(entry)) throw new Error(`${where} must be an object`);
      const reg = normalizeConfigKey(key);
      const cred = entryCredential(entry, where);
      rememberCredential(cred);
      if (cred && !(reg in out.auths)) out.auths[reg] = cred;
    }
  }
  if (v.credHelpers !== undefined) {
    if (!isObject(v.credHelpers)) throw new Error(`${source}: "credHelpers" must be an object`);
    for (const [key, name] of Object.entries(v.credHelpers)) {
      if (typeof name !== 'string' || !HELPER_NAME.test(name)) throw new Error(`${source}: credHelpers[${JSON.stringify(key)}] must be a helper name`);
      out.credHelpers[normalizeConfigKey(key)] = name;
    }
  }
  if (v.credsStore !== undefined && v.credsStore !== '') {
    if (typeof v.credsStore !== 'string' || !HELPER_NAME.test(v.credsStore)) throw new Error(`${source}: "credsStore" must be a helper name`);
    out.credsStore = v.credsStore;
  }
  return out;
}

/** The server URL a helper is asked about: Docker Hub credentials live under the v1 index URL. */
function helperServerUrl(registry: string): string {
  return registry === DOCKER_HUB ? HUB_SERVER_URL : registry;
}

/**
 * Runs `docker-credential-<name> get` with the server URL on stdin. Undefined when the helper
 * has no credentials for it.
 */
export async function runCredentialHelper(name: string, registry: string, what: string): Promise<Credential | undefined> {
  const bin = `docker-credential-${name}`;
  const { code, stdout, stderr, spawnError } = await new Promise<{ code: number | null; stdout: string; stderr: string; spawnError?: NodeJS.ErrnoException }>(
    (resolve) => {
      const child = spawn(bin, ['get'], { stdio: ['pipe', 'pipe', 'pipe'], timeout: HELPER_TIMEOUT_MS });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-2000)));
      child.stdin.on('error', () => undefined); // a helper that exits without reading stdin
      child.once('error', (e: NodeJS.ErrnoException) => resolve({ code: null, stdout, stderr, spawnError: e }));
      child.once('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(helperServerUrl(registry));
    },
  );
  if (spawnError) {
    if (spawnError.code === 'ENOENT') throw new Error(`${what} needs ${bin}, which is not installed or not on PATH`);
    throw new Error(`${what}: cannot run ${bin} (${spawnError.code ?? spawnError.message})`);
  }
  if (code !== 0) {
    if (/credentials not found/i.test(stdout + stderr)) return undefined;
    const detail = (stderr.trim() || stdout.trim()).split('\n')[0]?.slice(0, 200) ?? '';
    throw new Error(`${what}: ${bin} get failed (${code === null ? 'timed out' : `exit ${code}`})${detail ? `: ${detail}` : ''}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(stdout);
  } catch {
    throw new Error(`${what}: ${bin} get printed something that is not JSON`);
  }
  if (!isObject(v)) throw new Error(`${what}: ${bin} get printed something that is not a JSON object`);
  const username = str(v.Username);
  const secret = str(v.Secret);
  if (secret === undefined) return undefined;
  const cred: Credential =
    username === undefined || username === '<token>' ? { kind: 'identityToken', identityToken: secret } : { kind: 'basic', username, password: secret };
  rememberCredential(cred);
  return cred;
}

/**
 * `docker-config:<source>@<digest>+…` for the configs in lookup order, `anonymous` for none: the
 * same configs give the same identity, a changed one another (the digest covers what was parsed:
 * every credential and helper name, never quoted).
 */
export function dockerConfigIdentity(configs: readonly DockerConfig[]): string {
  if (configs.length === 0) return 'anonymous';
  const part = (c: DockerConfig): string => `${c.source ?? 'docker config'}@${contentDigest(JSON.stringify([c.auths, c.credHelpers, c.credsStore ?? null]))}`;
  return `docker-config:${configs.map(part).join('+')}`;
}

/**
 * Credentials from one or more docker configs; the first config that has the registry wins.
 * Helper results are cached for a few minutes (helpers such as ecr-login call cloud APIs);
 * failures are not cached. A missing helper fails only lookups that need it.
 */
export function dockerConfigProvider(...configs: DockerConfig[]): CredentialProvider {
  const cache = new Map<string, { at: number; value: Promise<Credential | undefined> }>();
  const helper = (name: string, registry: string, what: string): Promise<Credential | undefined> => {
    const key = `${name}\n${registry}`;
    const hit = cache.get(key);
    if (hit && Date.now() - hit.at < HELPER_CACHE_MS) return hit.value;
    const value = runCredentialHelper(name, registry, what);
    cache.set(key, { at: Date.now(), value });
    value.catch(() => cache.delete(key));
    return value;
  };
  return {
    identity: dockerConfigIdentity(configs),
    async get(registry: string): Promise<Credential | undefined> {
      const reg = canonicalRegistry(registry);
      for (const c of configs) {
        const src = c.source ?? 'docker config';
        const named = c.credHelpers[reg];
        if (named !== undefined) {
          const cred = await helper(named, reg, `credentials for ${reg} (credHelpers in ${src})`);
          if (cred) return cred;
          continue;
        }
        if (c.credsStore !== undefined) {
          const cred = await helper(c.credsStore, reg, `credentials for ${reg} (credsStore in ${src})`);
          if (cred) return cred;
        }
        const cred = c.auths[reg];
        if (cred) return cred;
      }
      return undefined;
    },
  };
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function defaultDockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DOCKER_CONFIG) return join(env.DOCKER_CONFIG, 'config.json');
  return join(env.HOME || homedir(), '.docker', 'config.json');
}

/** Reads and parses a config.json; undefined when the file does not exist. */
export async function loadDockerConfigFile(path: string): Promise<DockerConfig | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new Error(`${path}: cannot read docker config (${code ?? String(e)})`);
  }
  return parseDockerConfig(text, path);
}
