/**
 * Keeps credentials out of every text that leaves the process (errors, status, events, logs).
 *
 * Two nets: the literal values of every secret the process has loaded (passwords, `auth` strings,
 * identity and registry tokens, fetched bearer tokens), registered where they are loaded, and
 * patterns for credential-shaped text a registry may echo back (`Basic <b64>`, `Bearer <token>`,
 * `token=…`, `"password":"…"`, JWTs, `user:pass@` in URLs). Known values catch what no pattern
 * recognizes (a server quoting a decoded password); patterns catch values we never saw (a token
 * the server minted for someone else, a credential in a header we did not send).
 *
 * Every pattern is linear in the input (bounded repetitions, no nested quantifiers over the same
 * characters), so a hostile multi-megabyte error body cannot stall redaction.
 */

export const REDACTED = '[REDACTED]';

/**
 * Shorter values are not registered: a password such as `nope` or `right` would turn up as a word
 * in unrelated messages (a repository called `nope/app`) and garble them, and such a password is
 * guessable anyway. The patterns still cover short secrets in credential syntax (`Basic …`,
 * `password=…`), and `user:password` in base64 is registered when it is long enough.
 */
export const MIN_SECRET_LENGTH = 8;

/**
 * Long-lived credentials kept (most recently registered win). A controller with thousands of
 * Secrets stays within this; beyond it the oldest are forgotten and only the patterns remain.
 */
export const MAX_KNOWN_CREDENTIALS = 4096;

/**
 * Short-lived bearer tokens kept. They are minted every few minutes per scope set, so this pool
 * is separate: token churn must never push a password out of the credential pool.
 */
export const MAX_KNOWN_TOKENS = 4096;

/** Longest text redacted piecewise; longer texts are cut to this first (nothing leaves the process longer). */
export const MAX_REDACT_INPUT = 256 * 1024;

export type SecretKind = 'credential' | 'token';

const PREFIX = MIN_SECRET_LENGTH;

class SecretPool {
  /** Insertion order is recency order: the first entry is evicted first. */
  private readonly values = new Set<string>();
  constructor(
    private readonly max: number,
    private readonly index: Map<string, Set<string>>,
  ) {}

  add(v: string): void {
    if (this.values.has(v)) {
      this.values.delete(v);
      this.values.add(v);
      return;
    }
    this.values.add(v);
    const p = v.slice(0, PREFIX);
    let bucket = this.index.get(p);
    if (!bucket) this.index.set(p, (bucket = new Set()));
    bucket.add(v);
    while (this.values.size > this.max) {
      const oldest = this.values.values().next().value as string;
      this.values.delete(oldest);
      this.unindex(oldest);
    }
  }

  has(v: string): boolean {
    return this.values.has(v);
  }

  get size(): number {
    return this.values.size;
  }

  private unindex(v: string): void {
    // The other pool may hold the same value; it stays indexed for that one.
    if (others(this).some((p) => p.has(v))) return;
    const p = v.slice(0, PREFIX);
    const bucket = this.index.get(p);
    bucket?.delete(v);
    if (bucket?.size === 0) this.index.delete(p);
  }
}

/** First MIN_SECRET_LENGTH characters → the secrets starting with them: one lookup per text position. */
const index = new Map<string, Set<string>>();
const pools: Record<SecretKind, SecretPool> = {
  credential: new SecretPool(MAX_KNOWN_CREDENTIALS, index),
  token: new SecretPool(MAX_KNOWN_TOKENS, index),
};
function others(p: SecretPool): SecretPool[] {
  return Object.values(pools).filter((q) => q !== p);
}

/**
 * Remembers a secret so that redact() removes it wherever it appears. Also registers the forms it
 * takes on the wire (URL-encoded). Values too short to redact safely, or that are part of the
 * REDACTED marker itself, are ignored.
 */
export function registerSecret(value: string | undefined, kind: SecretKind = 'credential'): void {
  if (!value) return;
  for (const v of new Set([value, safeEncode(value)])) {
    if (v.length < MIN_SECRET_LENGTH || REDACTED.includes(v)) continue;
    pools[kind].add(v);
  }
}

/** `Basic` credentials: the password and the base64 of `user:password` that goes on the wire. */
export function registerBasicCredential(username: string, password: string): void {
  registerSecret(password);
  registerSecret(Buffer.from(`${username}:${password}`, 'utf8').toString('base64'));
}

/** How many secrets of each kind are remembered (for tests of the bounds). */
export function knownSecretCount(kind: SecretKind): number {
  return pools[kind].size;
}

/** Whether `value` is still remembered (for tests of the bounds). */
export function isKnownSecret(value: string): boolean {
  return pools.credential.has(value) || pools.token.has(value);
}

function safeEncode(v: string): string {
  try {
    return encodeURIComponent(v);
  } catch {
    return v; // lone surrogates
  }
}

/** Key names whose values are credentials, in `key=value`, JSON and header form. */
const SENSITIVE_KEY = /token|passw|pwd|secret|auth|credential|api[-_]?key|signature|^sig$|cookie|session/i;
/** Auth-param names that follow a scheme in a challenge (`Bearer realm="…"`): not credentials. */
const CHALLENGE_PARAM = /^(?:realm|service|scope|error|error_description|error_uri|charset)\s*=/i;

const RULES: Array<{ re: RegExp; fix: (m: string, ...g: string[]) => string }> = [
  // Most specific first: a broader rule (key=value) could swallow the word a narrower one keys on
  // (`token= Bearer <t>` would lose `Bearer` and leave <t>).
  // `Basic <token68>` / `Bearer <token>`, but not a challenge's `Bearer realm="…"`, and not the
  // next scheme word (`Basic Bearer <t>` must still reach <t>).
  {
    re: /\b(basic|bearer)(\s{1,16})(?!(?:basic|bearer)\b)([A-Za-z0-9\-._~+/%]+=*)/gi,
    fix: (m, scheme: string, ws: string, tok: string) => (CHALLENGE_PARAM.test(tok) ? m : `${scheme}${ws}${REDACTED}`),
  },
  // JWTs (distribution and most token servers mint these): header.payload[.signature].
  {
    // Anchored at the start of a run of token characters, so a long run is scanned once.
    re: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)?/g,
    fix: () => REDACTED,
  },
  // JSON members: `"token":"…"` (escapes inside the value included).
  {
    re: /("([^"\\]{1,64})"\s{0,16}:\s{0,16}")((?:[^"\\]|\\.)*)/g,
    fix: (m, head: string, key: string) => (SENSITIVE_KEY.test(key) ? `${head}${REDACTED}` : m),
  },
  // The same JSON quoted inside a JSON string (`\"token\":\"…\"`), as error bodies nest it.
  {
    re: /(\\"([^"\\]{1,64})\\"\s{0,16}:\s{0,16}\\")((?:[^\\]|\\[^"])*)/g,
    fix: (m, head: string, key: string) => (SENSITIVE_KEY.test(key) ? `${head}${REDACTED}` : m),
  },
  // Header lines: `Authorization: <anything>` (a scheme and its token, or a raw token).
  {
    re: /\b(authorization|proxy-authorization|cookie|set-cookie|x-registry-auth|x-registry-token|x-auth-token|private-token)(["']?\s{0,16}:\s{0,16})([^\r\n"',;]+)/gi,
    fix: (_m, name: string, sep: string) => `${name}${sep}${REDACTED}`,
  },
  // key=value in queries, forms and prose.
  {
    re: /(?<![A-Za-z0-9_.-])([A-Za-z0-9_.-]{1,64})(\s{0,4}=\s{0,4})([^&\s"',;<>]+)/g,
    fix: (m, key: string, eq: string, value: string) => (SENSITIVE_KEY.test(key) && !value.startsWith(REDACTED) ? `${key}${eq}${REDACTED}` : m),
  },
  // user:password@ in URLs.
  {
    re: /\b([a-z][a-z0-9+.-]{0,15}:\/\/[^\s/:@]{0,256}:)([^\s/@]{1,4096})@/gi,
    fix: (_m, head: string) => `${head}${REDACTED}@`,
  },
];

/** Every known secret occurring in `text`, as [start, end) ranges merged and sorted. */
function knownRanges(text: string): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  if (index.size === 0) return ranges;
  for (let i = 0; i + PREFIX <= text.length; i++) {
    const bucket = index.get(text.slice(i, i + PREFIX));
    if (!bucket) continue;
    let end = -1;
    for (const s of bucket) if (s.length > end - i && text.startsWith(s, i)) end = i + s.length;
    if (end > 0) ranges.push([i, end]);
  }
  const merged: Array<[number, number]> = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return merged;
}

function replaceKnown(text: string): string {
  const ranges = knownRanges(text);
  if (ranges.length === 0) return text;
  let out = '';
  let at = 0;
  for (const [s, e] of ranges) {
    out += text.slice(at, s) + REDACTED;
    at = e;
  }
  return out + text.slice(at);
}

/**
 * `text` without registered secrets and credential-shaped values. Idempotent; linear in the
 * length of `text` (capped at MAX_REDACT_INPUT) plus the number of secrets sharing a prefix.
 */
export function redact(text: string): string {
  let out = text.length > MAX_REDACT_INPUT ? text.slice(0, MAX_REDACT_INPUT) : text;
  out = replaceKnown(out);
  for (const r of RULES) out = out.replace(r.re, r.fix as (m: string, ...g: unknown[]) => string);
  // A replacement can make a secret appear across its edge (marker text + what followed);
  // a few passes settle it, and if not, nothing of the text is worth the risk.
  for (let pass = 0; pass < 3; pass++) {
    const again = replaceKnown(out);
    if (again === out) return out;
    out = again;
  }
  return knownRanges(out).length === 0 ? out : REDACTED;
}

/** Redacts every string in a value (objects and arrays to a bounded depth), for structured logs. */
export function redactValue(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return redact(v);
  if (v instanceof Error) return redact(v.message.split('\n')[0] ?? v.name);
  if (depth >= 8 || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => redactValue(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = SENSITIVE_KEY.test(k) && typeof x === 'string' ? REDACTED : redactValue(x, depth + 1);
  return out;
}
