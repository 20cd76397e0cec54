/**
 * Property tests for proxy selection (NO_PROXY matching, variable precedence, proxy URLs that must
 * not leak credentials) and for certs-directory naming (which directories a host maps to, and that
 * no host string can point outside the certs directory).
 */
import assert from 'node:assert/strict';
import { join, resolve, sep } from 'node:path';
import fc from 'fast-check';
import { certsDirNames } from '../../src/oci/certs-dir.js';
import { bypassesProxy, parseNoProxy, proxyFor, proxySettings } from '../../src/oci/dispatcher.js';
import { isOciError } from '../../src/oci/errors.js';

const NUM_RUNS = 300;

/** Few labels, so listed domains and targets collide (and nest) often. */
const label = fc.constantFrom('a', 'b', 'reg', 'corp', 'example', 'xa');
const domain = fc.array(label, { minLength: 1, maxLength: 3 }).map((ls) => ls.join('.'));
const port = fc.constantFrom(80, 443, 5000, 5001);
const randomCase = (s: string): fc.Arbitrary<string> =>
  fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length }).map((up) => [...s].map((c, i) => (up[i] ? c.toUpperCase() : c)).join(''));

interface Entry {
  host: string;
  port: number; // 0: any
  form: 'plain' | 'dot' | 'star';
}

const entry: fc.Arbitrary<Entry> = fc.record({ host: domain, port: fc.oneof(fc.constant(0), port), form: fc.constantFrom('plain', 'dot', 'star') });

function entryText(e: Entry): string {
  const prefix = e.form === 'dot' ? '.' : e.form === 'star' ? '*.' : '';
  return `${prefix}${e.host}${e.port ? `:${e.port}` : ''}`;
}

/** The reference: a name matches an entry when it is the entry's domain or under it, on the entry's port if it has one. */
function modelBypass(entries: Entry[], star: boolean, host: string, p: number): boolean {
  if (star) return true;
  const h = host.toLowerCase();
  return entries.some((e) => (e.port === 0 || e.port === p) && (h === e.host || h.endsWith(`.${e.host}`)));
}

const separator = fc.constantFrom(',', ' ', ', ', '\t', ' ,\n');

function ipv4Number(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

describe('fuzz: proxy selection', () => {
  it('NO_PROXY matches a host exactly like the reference (domain and subdomains, port-specific entries, `*`, any case and separators)', () => {
    fc.assert(
      fc.property(
        fc.array(entry, { maxLength: 4 }),
        fc.boolean(),
        fc.array(separator, { minLength: 5, maxLength: 5 }),
        domain.chain(randomCase),
        port,
        fc.boolean(),
        (entries, star, seps, host, p, upper) => {
          const texts = entries.map(entryText);
          if (star) texts.splice(texts.length >> 1, 0, '*');
          const value = texts.map((t, i) => (i === 0 ? t : seps[i % seps.length]! + t)).join('');
          const rules = parseNoProxy(upper ? value.toUpperCase() : value);
          assert.equal(bypassesProxy(host, p, rules), modelBypass(entries, star, host, p), `NO_PROXY=${JSON.stringify(value)} host=${host}:${p}`);
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it('an IPv4 CIDR entry covers exactly the addresses sharing its prefix; IP entries never match by suffix', () => {
    const octet = fc.integer({ min: 0, max: 255 });
    const ipv4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
    fc.assert(
      fc.property(ipv4, fc.integer({ min: 0, max: 32 }), ipv4, (base, prefix, target) => {
        const shift = 32 - prefix;
        const same = prefix === 0 || Math.floor(ipv4Number(base) / 2 ** shift) === Math.floor(ipv4Number(target) / 2 ** shift);
        assert.equal(bypassesProxy(target, 443, parseNoProxy(`${base}/${prefix}`)), same, `${base}/${prefix} vs ${target}`);
        // `0.0.1` is not a domain of `10.0.0.1`: numeric entries are addresses (`0.0.1` is 0.0.0.1).
        const tail = target.split('.').slice(1).join('.');
        assert.equal(bypassesProxy(target, 443, parseNoProxy(tail)), new URL(`http://${tail}`).hostname === target);
      }),
      { numRuns: NUM_RUNS },
    );
    // IPv6 in any spelling, with or without brackets and port.
    for (const e of ['::1', '[::1]', '[::1]:5000', '0:0:0:0:0:0:0:1', '::1/128', '::/0']) assert.ok(bypassesProxy('[::1]', 5000, parseNoProxy(e)), e);
    assert.ok(!bypassesProxy('[::1]', 5001, parseNoProxy('[::1]:5000')));
    assert.ok(!bypassesProxy('[::2]', 5000, parseNoProxy('::1, 10.0.0.0/8')));
  });

  it('picks the proxy as undici does: lower-case before upper-case, HTTPS falls back to HTTP_PROXY, "" means none', () => {
    const value = fc.constantFrom(undefined, '', 'http://p1:1', 'http://p2:2');
    fc.assert(
      fc.property(fc.record({ http_proxy: value, HTTP_PROXY: value, https_proxy: value, HTTPS_PROXY: value }), (vars) => {
        const env: NodeJS.ProcessEnv = {};
        for (const [k, v] of Object.entries(vars)) if (v !== undefined) env[k] = v;
        const http = (vars.http_proxy ?? vars.HTTP_PROXY) || undefined;
        const https = (vars.https_proxy ?? vars.HTTPS_PROXY) || http;
        const s = proxySettings(env);
        assert.equal(proxyFor(new URL('https://registry.example/v2/'), s)?.origin, https);
        assert.equal(proxyFor(new URL('http://registry.example/v2/'), s)?.origin, http);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('a proxy variable either parses or fails with one line that never holds the password; NO_PROXY never throws', () => {
    const piece = fc.string({ maxLength: 12 });
    fc.assert(
      fc.property(fc.constantFrom('http', 'https', 'socks5', 'ftp', ''), piece, piece, fc.string({ maxLength: 40 }), (scheme, user, host, noProxy) => {
        const value = `${scheme ? `${scheme}://` : ''}${user}:S3CRET@${host}`;
        try {
          const s = proxySettings({ HTTPS_PROXY: value, NO_PROXY: noProxy });
          assert.ok(s.httpsProxy === undefined || ['http:', 'https:'].includes(s.httpsProxy.protocol));
        } catch (e) {
          assert.ok(isOciError(e), String(e));
          assert.doesNotMatch(e.message, /S3CRET|[\r\n]/);
        }
        parseNoProxy(noProxy);
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

describe('fuzz: certs directory naming', () => {
  it('a host maps to <host:port> then <host>; no string names a directory outside the certs directory', () => {
    const octet = fc.integer({ min: 0, max: 255 });
    const host = fc.oneof(domain, fc.tuple(octet, octet, octet, octet).map((o) => o.join('.')), fc.constantFrom('[::1]', '[fd00::2]'));
    fc.assert(
      fc.property(host, fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }), (h, p) => {
        const full = p === undefined ? h : `${h}:${p}`;
        assert.deepEqual(certsDirNames(full), p === undefined ? [h] : [full, h]);
      }),
      { numRuns: NUM_RUNS },
    );
    const root = resolve('/etc/containers/certs.d');
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('..', '.', '../x', '..:5000', '.:1', 'a/../..', '\\..', 'x\0y')), (s) => {
        for (const name of certsDirNames(s)) {
          const dir = resolve(join(root, name));
          assert.ok(dir.startsWith(root + sep) && dir !== root, `${JSON.stringify(s)} → ${dir}`);
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
