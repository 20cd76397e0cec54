import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  canonicalRegistry,
  formatReference,
  isLoopbackRegistry,
  isValidDigest,
  isValidTag,
  parseReference,
  parseRepository,
  registryApiHost,
  type ImageReference,
} from '../../src/oci/reference.js';
import { OciError } from '../../src/oci/errors.js';

const D = 'sha256:' + 'ab'.repeat(32);

function ok(input: string, want: ImageReference): void {
  assert.deepEqual(parseReference(input), want, input);
}
function bad(input: string, why: RegExp): void {
  assert.throws(
    () => parseReference(input),
    (e: unknown) => {
      assert.ok(e instanceof OciError, `${input}: not an OciError`);
      assert.equal(e.code, 'INVALID_REFERENCE');
      assert.match(e.message, why, input);
      assert.ok(!e.message.includes('\n'));
      return true;
    },
    input,
  );
}

describe('image references', () => {
  describe('valid forms', () => {
    const table: Array<[string, ImageReference]> = [
      ['nginx', { registry: 'docker.io', repository: 'library/nginx' }],
      ['nginx:1.25', { registry: 'docker.io', repository: 'library/nginx', tag: '1.25' }],
      ['bitnami/redis', { registry: 'docker.io', repository: 'bitnami/redis' }],
      ['docker.io/nginx', { registry: 'docker.io', repository: 'library/nginx' }],
      ['index.docker.io/library/nginx', { registry: 'docker.io', repository: 'library/nginx' }],
      ['registry-1.docker.io/bitnami/redis:7', { registry: 'docker.io', repository: 'bitnami/redis', tag: '7' }],
      ['INDEX.DOCKER.IO:443/x/y', { registry: 'docker.io', repository: 'x/y' }],
      ['registry.example.com:8221/team/app:1.2', { registry: 'registry.example.com:8221', repository: 'team/app', tag: '1.2' }],
      ['Registry.Example.COM/team/app', { registry: 'registry.example.com', repository: 'team/app' }],
      ['registry.example.com:443/team/app', { registry: 'registry.example.com', repository: 'team/app' }],
      ['registry.example.com:80/team/app', { registry: 'registry.example.com:80', repository: 'team/app' }],
      ['localhost:5000/x', { registry: 'localhost:5000', repository: 'x' }],
      ['localhost/x', { registry: 'localhost', repository: 'x' }],
      ['localhost:443/x', { registry: 'localhost:443', repository: 'x' }],
      ['myhost:443/x', { registry: 'myhost:443', repository: 'x' }],
      ['127.0.0.1:5000/a/b/c', { registry: '127.0.0.1:5000', repository: 'a/b/c' }],
      ['[::1]:5000/x', { registry: '[::1]:5000', repository: 'x' }],
      ['[::1]/x:v1', { registry: '[::1]', repository: 'x', tag: 'v1' }],
      ['[0:0:0:0:0:0:0:1]:5000/x', { registry: '[::1]:5000', repository: 'x' }],
      ['[FD00::AB]:5000/x', { registry: '[fd00::ab]:5000', repository: 'x' }],
      [`nginx@${D}`, { registry: 'docker.io', repository: 'library/nginx', digest: D }],
      [`r.io/a:t@${D}`, { registry: 'r.io', repository: 'a', tag: 't', digest: D }],
      ['a.b/c__d/e.f/g-h/i---j:_T.a-g', { registry: 'a.b', repository: 'c__d/e.f/g-h/i---j', tag: '_T.a-g' }],
      // Without a slash the colon introduces a tag, as in docker: this is not a registry.
      ['localhost:5000', { registry: 'docker.io', repository: 'library/localhost', tag: '5000' }],
    ];
    for (const [input, want] of table) it(input, () => ok(input, want));
  });

  describe('invalid forms say what is wrong', () => {
    const long = 'a'.repeat(250);
    const table: Array<[string, RegExp]> = [
      ['', /empty reference/],
      [' nginx', /whitespace/],
      ['a:b:c', /invalid character ":"/],
      ['Foo/bar', /"Foo" has uppercase letters/],
      ['NGINX', /must be lowercase/],
      ['r.io/Team/app', /must be lowercase \("Team"\)/],
      ['a//b', /empty path component/],
      ['r.io/a/', /empty path component/],
      ['/a', /empty path component/],
      ['r.io/', /empty repository path/],
      ['nginx:', /empty tag/],
      ['nginx@', /empty digest/],
      [':tag', /empty repository name/],
      ['nginx:-x', /invalid tag "-x"/],
      [`nginx:${'t'.repeat(129)}`, /tag is 129 characters, at most 128/],
      ['nginx@sha256:abc', /64 lowercase hex digits, got 3 characters/],
      [`nginx@sha256:${'AB'.repeat(32)}`, /with uppercase/],
      [`nginx@md5:${'a'.repeat(32)}`, /unsupported digest algorithm "md5"/],
      ['nginx@abc', /"<algorithm>:<hex>"/],
      [`nginx@${D}@${D}`, /more than one "@"/],
      ['r.io:99999/a', /invalid port "99999"/],
      ['r.io:/a', /invalid port ""/],
      ['r.io:abc/a', /invalid port "abc"/],
      ['[::1/a', /invalid IPv6/],
      ['[zz::1]:5000/a', /invalid IPv6/],
      ['-r.io/a', /invalid registry host/],
      ['r..io/a', /invalid registry host/],
      ['r_x.io/a', /invalid registry host/],
      ['a/b-/c', /must start and end with a letter or digit/],
      ['a/b$c', /invalid character "\$"/],
      [`r.io/${long}a`, /256 characters, at most 255/],
      // 245 characters as written, over 255 once docker.io/library/ is added.
      ['x'.repeat(245), /at most 255/],
    ];
    for (const [input, why] of table) it(JSON.stringify(input).slice(0, 60), () => bad(input, why));
  });

  it('accepts names of exactly 255 canonical characters', () => {
    const name = `r.io/${'a'.repeat(250)}`;
    assert.equal(name.length, 255);
    assert.equal(formatReference(parseReference(name)), name);
  });

  it('parseRepository refuses a tag or digest and hints at a registry without a path', () => {
    assert.deepEqual(parseRepository('registry.example.com:8221/dev/web'), { registry: 'registry.example.com:8221', repository: 'dev/web' });
    assert.deepEqual(parseRepository('nginx'), { registry: 'docker.io', repository: 'library/nginx' });
    assert.throws(() => parseRepository('r.io/a:1'), /must not include a tag \(":1"\)/);
    assert.throws(() => parseRepository(`r.io/a@${D}`), /must not include a digest/);
    assert.throws(() => parseRepository('localhost:5000'), /add a repository path: "localhost:5000\/name"/);
    assert.throws(() => parseRepository('A/b'), (e: unknown) => e instanceof OciError && e.code === 'INVALID_REFERENCE');
  });

  it('canonicalRegistry, registryApiHost and isLoopbackRegistry', () => {
    assert.equal(canonicalRegistry('Index.Docker.io'), 'docker.io');
    assert.equal(canonicalRegistry('registry-1.docker.io:443'), 'docker.io');
    assert.equal(canonicalRegistry('docker.io:5000'), 'docker.io:5000');
    assert.equal(canonicalRegistry('GHCR.io:443'), 'ghcr.io');
    assert.equal(canonicalRegistry('[0::1]:5000'), '[::1]:5000');
    assert.equal(canonicalRegistry('127.0.0.1:443'), '127.0.0.1:443');
    assert.equal(registryApiHost('docker.io'), 'registry-1.docker.io');
    assert.equal(registryApiHost('index.docker.io'), 'registry-1.docker.io');
    assert.equal(registryApiHost('ghcr.io'), 'ghcr.io');
    for (const r of ['localhost', 'localhost:5000', '127.0.0.1:5000', '127.8.9.10', '[::1]:5000', '[::1]', '[0:0::1]:1']) assert.ok(isLoopbackRegistry(r), r);
    for (const r of ['docker.io', '10.0.0.1:5000', '128.0.0.1', '[::2]:5000', 'localhost.example.com', '127.0.0.1.nip.io']) assert.ok(!isLoopbackRegistry(r), r);
  });

  it('isValidTag / isValidDigest', () => {
    for (const t of ['latest', '1.2.3', '_x', 'A-b.c_d', 't'.repeat(128)]) assert.ok(isValidTag(t), t);
    for (const t of ['', '.x', '-x', 'a:b', 'a/b', 't'.repeat(129), 'a b']) assert.ok(!isValidTag(t), t);
    assert.ok(isValidDigest(D));
    assert.ok(isValidDigest('sha512:' + 'c'.repeat(128)));
    for (const d of ['sha256:' + 'a'.repeat(63), 'sha256:' + 'A'.repeat(64), 'sha512:' + 'c'.repeat(64), 'sha256' + 'a'.repeat(64), ':' + 'a'.repeat(64)])
      assert.ok(!isValidDigest(d), d);
  });

  describe('properties', () => {
    const lowerAlnum = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'), minLength: 1, maxLength: 6 });
    const sep = fc.constantFrom('.', '_', '__', '-', '--');
    const pathComponent = fc
      .tuple(lowerAlnum, fc.array(fc.tuple(sep, lowerAlnum), { maxLength: 2 }))
      .map(([h, t]) => h + t.map(([s, w]) => s + w).join(''));
    const port = fc.integer({ min: 1, max: 65535 }).filter((p) => p !== 443);
    const domainName = fc
      .array(fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/), { minLength: 2, maxLength: 3 })
      .map((a) => a.join('.'))
      .filter((h) => canonicalRegistry(h) === h);
    const registry = fc.oneof(
      fc.constant('docker.io'),
      domainName,
      fc.tuple(domainName, port).map(([h, p]) => `${h}:${p}`),
      fc.tuple(fc.constantFrom('localhost', '[::1]', '127.0.0.1', '[fd00::1:2]'), fc.option(fc.integer({ min: 1, max: 65535 }))).map(([h, p]) =>
        p === null ? h : `${h}:${p}`,
      ),
    );
    const tag = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/);
    const digest = fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256:${h}`);
    const validRef: fc.Arbitrary<ImageReference> = fc
      .record({
        registry,
        components: fc.array(pathComponent, { minLength: 1, maxLength: 4 }),
        tag: fc.option(tag, { nil: undefined }),
        digest: fc.option(digest, { nil: undefined }),
      })
      .map(({ registry, components, tag, digest }) => {
        if (registry === 'docker.io' && components.length === 1) components = ['library', ...components];
        const r: ImageReference = { registry, repository: components.join('/') };
        if (tag !== undefined) r.tag = tag;
        if (digest !== undefined) r.digest = digest;
        return r;
      });

    it('parse(format(r)) equals r for generated valid references', () => {
      fc.assert(
        fc.property(validRef, (r) => {
          assert.deepEqual(parseReference(formatReference(r)), r);
        }),
        { numRuns: 500 },
      );
    });

    // Strings built from the pieces the grammar cares about, so many parse and many do not.
    const messy = fc
      .array(
        fc.constantFrom('a', 'B', '0', '.', '-', '_', '/', ':', '@', '[', ']', 'localhost', 'docker.io', 'Index.Docker.io', '::1', '443', 'sha256:', 'ab'.repeat(32)),
        { maxLength: 12 },
      )
      .map((a) => a.join(''));

    it('format(parse(x)) is stable, and parse only ever throws INVALID_REFERENCE', () => {
      fc.assert(
        fc.property(fc.oneof(messy, validRef.map(formatReference), fc.string()), (s) => {
          let r: ImageReference;
          try {
            r = parseReference(s);
          } catch (e) {
            assert.ok(e instanceof OciError && e.code === 'INVALID_REFERENCE', `unexpected error for ${JSON.stringify(s)}: ${String(e)}`);
            return;
          }
          const once = formatReference(r);
          assert.equal(formatReference(parseReference(once)), once);
          assert.deepEqual(parseReference(once), r);
          assert.ok(`${r.registry}/${r.repository}`.length <= 255);
        }),
        { numRuns: 2000 },
      );
    });
  });
});
