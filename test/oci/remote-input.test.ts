/**
 * Strings and structures from a hostile registry are checked before use: tags listed with path
 * traversal, index and referrers entries whose "digest" is a tag or a path, a HEAD naming a tag as
 * its digest, a GET swapping content after a HEAD, and listings without end. The hostile side is a
 * small configurable server (test/support/hostile-registry.ts) in front of a real docker-registry,
 * which is where any write outside the mirror's target would land.
 */
import assert from 'node:assert/strict';
import { CopyEngine } from '../../src/copy/engine.js';
import { createReconciler } from '../../src/mirror/reconcile.js';
import type { ReconcileContext } from '../../src/mirror/reconciler.js';
import type { Repository } from '../../src/oci/content.js';
import { OciError } from '../../src/oci/errors.js';
import {
  MAX_LIST_PAGES,
  MAX_REFERRERS_LISTING_BYTES,
  MAX_REFERRERS_PER_SUBJECT,
  MAX_TAGS_PER_LISTING,
  MAX_TAG_LISTING_BYTES,
} from '../../src/oci/listing.js';
import { MAX_JSON_DEPTH } from '../../src/oci/json.js';
import { MAX_MANIFEST_BYTES, MediaType } from '../../src/oci/media-types.js';
import { apiPath } from '../../src/oci/names.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { buildImage, pushBlobs, pushImage, type BuiltImage } from '../support/images.js';
import { digestOf, is, json, manifestAnswer, startHostileRegistry, type HostileRegistry } from '../support/hostile-registry.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

const anonymousCtx: ReconcileContext = { credentials: async () => ({ get: async () => undefined }) };
const D = (c: string): string => `sha256:${c.repeat(64)}`;

async function rejects(p: Promise<unknown>, code: string, re: RegExp): Promise<OciError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof OciError, `expected OciError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), 'one line');
    return e;
  }
  assert.fail(`expected ${code}`);
}

async function tagsOf(repo: Repository): Promise<string[]> {
  return (await repo.listTags()).sort();
}

/** `image`, re-serialized with an annotation: same blobs, another digest. */
function variant(image: BuiltImage, note: string): { bytes: Buffer; digest: string } {
  const j = JSON.parse(image.bytes.toString('utf8')) as Record<string, unknown>;
  const bytes = Buffer.from(JSON.stringify({ ...j, annotations: { note } }));
  return { bytes, digest: digestOf(bytes) };
}

describe('remote input from a hostile registry', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let hostile: HostileRegistry;
  let real: RegistryClient;
  let viaHostile: RegistryClient;
  let victim: BuiltImage;
  let source: BuiltImage;

  before(async () => {
    reg = await startRegistry();
    hostile = await startHostileRegistry({ upstream: reg.host });
    real = new RegistryClient(reg.host);
    viaHostile = new RegistryClient(hostile.host);
    victim = await pushImage(real.repository('victim/app'), buildImage(), 'latest');
    source = await pushImage(real.repository('upstream/app'), buildImage(), 'v1.0');
  });
  beforeEach(() => hostile.reset());
  after(async () => {
    await Promise.all([real.close(), viaHostile.close()]);
    await hostile.stop();
    await reg.stop();
  });

  describe('writes stay in the target repository', () => {
    it('a listed tag climbing out of the repository is dropped: never selected, never HEADed, never written', async () => {
      // The attacker's image reuses the victim's blobs, so a PUT landing on victim/app would succeed.
      const evil = variant(victim, 'pwned');
      await pushBlobs(real.repository('upstream/app'), victim.blobs);
      await real.repository('upstream/app').putManifest(evil.digest, { mediaType: victim.mediaType, bytes: evil.bytes });
      const traversal = 'v1/../../../../victim/app/manifests/latest';
      hostile.routes.push((req) =>
        is(req, 'GET', 'upstream/app', 'tags/list') ? json({ name: 'upstream/app', tags: ['v1.0', traversal, '.v1', 7, null] }) : undefined,
      );
      // Where the traversal lands on the source (URL normalisation): the attacker's image.
      hostile.manifest('victim/app', 'latest', evil.bytes, victim.mediaType);

      const reconciler = createReconciler();
      try {
        const r = await reconciler.reconcile(
          {
            apiVersion: 'imagemirror.dev/v1alpha1',
            kind: 'ImageMirror',
            metadata: { name: 'm', namespace: 'team-a', generation: 1 },
            spec: { source: { repository: `${hostile.host}/upstream/app`, tagPattern: '^v1' }, targets: [{ repository: `${reg.host}/mirror/app` }] },
          },
          anonymousCtx,
        );
        assert.equal(r.outcome, 'synced', r.message);
        assert.deepEqual(r.targets.map((t) => t.reference), [`${reg.host}/mirror/app:v1.0`]);
      } finally {
        await reconciler.close();
      }
      assert.equal((await real.repository('victim/app').headManifest('latest'))?.digest, victim.digest, 'victim tag untouched');
      assert.deepEqual(await tagsOf(real.repository('mirror/app')), ['v1.0']);
      assert.equal((await real.repository('mirror/app').headManifest('v1.0'))?.digest, source.digest);
      assert.deepEqual(hostile.log.filter((e) => e.path.includes('victim')), [], 'the traversal tag was never requested');
    });

    it('index entries whose digest is a tag or a path are refused (DIGEST_INVALID naming the source); nothing is fetched or written by them', async () => {
      const evil = variant(victim, 'injected');
      await pushBlobs(real.repository('upstream/app'), victim.blobs);
      await real.repository('upstream/app').putManifest(evil.digest, { mediaType: victim.mediaType, bytes: evil.bytes });
      for (const bad of ['injected-tag', '../../../victim/app/manifests/pwned']) {
        hostile.reset();
        const index = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: MediaType.OciIndex,
            manifests: [source.descriptor, { mediaType: MediaType.OciManifest, digest: bad, size: evil.bytes.length }],
          }),
        );
        hostile.manifest('upstream/app', 'multi', index, MediaType.OciIndex);
        hostile.manifest('upstream/app', digestOf(index), index, MediaType.OciIndex);
        // What the bad "digest" would fetch if it were used as a reference.
        hostile.manifest('upstream/app', 'injected-tag', evil.bytes, victim.mediaType);
        hostile.manifest('victim/app', 'pwned', evil.bytes, victim.mediaType);

        const engine = new CopyEngine();
        const res = await engine.copyImage({
          source: viaHostile.repository('upstream/app'),
          reference: 'multi',
          targets: [{ repository: real.repository('mirror/idx'), tags: ['multi'] }],
          referrers: false,
          overwrite: true,
        });
        const t = res.targets[0]!;
        assert.equal(t.action, 'Failed');
        assert.equal(t.errorCode, 'DIGEST_INVALID', t.message);
        assert.match(t.message ?? '', new RegExp(`${hostile.host}/upstream/app.*manifests\\[1\\].*is not a digest`));
        assert.ok(!(t.message ?? '').includes('\n'));
        assert.deepEqual(hostile.log.filter((e) => e.path.includes('injected-tag') || e.path.includes('victim')), [], bad);
      }
      assert.deepEqual(await tagsOf(real.repository('mirror/idx')), []);
      assert.deepEqual(await tagsOf(real.repository('upstream/app')), ['v1.0'], 'no tag written on the source registry either');
      assert.deepEqual(await tagsOf(real.repository('victim/app')), ['latest']);
    });

    it('a referrers entry whose digest is a tag is refused; the target gets no such tag', async () => {
      const evil = variant(victim, 'sig');
      await pushBlobs(real.repository('upstream/app'), victim.blobs);
      await real.repository('upstream/app').putManifest(evil.digest, { mediaType: victim.mediaType, bytes: evil.bytes });
      hostile.routes.push((req) =>
        is(req, 'GET', 'upstream/app', `referrers/${source.digest}`)
          ? json({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [{ mediaType: MediaType.OciManifest, digest: 'sig-tag', size: 10 }] }, { 'content-type': MediaType.OciIndex })
          : undefined,
      );
      hostile.manifest('upstream/app', 'sig-tag', evil.bytes, victim.mediaType);
      const engine = new CopyEngine();
      const res = await engine.copyImage({
        source: viaHostile.repository('upstream/app'),
        reference: 'v1.0',
        targets: [{ repository: real.repository('mirror/ref'), tags: ['v1.0'] }],
        referrers: true,
        overwrite: true,
      });
      const t = res.targets[0]!;
      assert.equal(t.action, 'Failed');
      assert.equal(t.errorCode, 'DIGEST_INVALID', t.message);
      assert.match(t.message ?? '', new RegExp(`referrers: GET referrers of ${hostile.host}/upstream/app@${source.digest}.*"sig-tag" is not a digest`));
      assert.deepEqual(hostile.log.filter((e) => e.path.includes('sig-tag')), []);
      assert.ok(!(await tagsOf(real.repository('mirror/ref'))).includes('sig-tag'));
    });

    it(`a fallback index (registry without the referrers API) gets the same checks: bad digests and more than MAX_REFERRERS_PER_SUBJECT entries are refused`, async () => {
      const tag = source.digest.replace(':', '-');
      const entry = (i: number): object => ({ mediaType: MediaType.OciManifest, digest: `sha256:${i.toString(16).padStart(64, '0')}`, size: 100 });
      hostile.routes.push((req) => (is(req, 'GET', 'upstream/app', 'tags/list') ? json({ name: 'upstream/app', tags: ['v1.0', tag] }) : undefined));
      const cases: Array<[unknown[], string, RegExp]> = [
        [[{ mediaType: MediaType.OciManifest, digest: 'sig-tag', size: 10 }], 'DIGEST_INVALID', /manifests\[0\]: "sig-tag" is not a digest/],
        [Array.from({ length: MAX_REFERRERS_PER_SUBJECT + 1 }, (_, i) => entry(i)), 'PROTOCOL', new RegExp(`more than ${MAX_REFERRERS_PER_SUBJECT} referrers`)],
      ];
      for (const [manifests, code, re] of cases) {
        const fallback = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests }));
        hostile.manifest('upstream/app', tag, fallback, MediaType.OciIndex);
        const res = await new CopyEngine().copyImage({
          source: viaHostile.repository('upstream/app'),
          reference: 'v1.0',
          targets: [{ repository: real.repository('mirror/fallback'), tags: ['v1.0'] }],
          referrers: true,
          overwrite: true,
        });
        const t = res.targets[0]!;
        assert.equal(t.action, 'Failed');
        assert.equal(t.errorCode, code, t.message);
        assert.match(t.message ?? '', re);
        assert.match(t.message ?? '', new RegExp(`${hostile.host}/upstream/app:${tag}`));
      }
      assert.deepEqual(hostile.log.filter((e) => e.path.includes('sig-tag') || e.path.includes('/manifests/sha256:000')), [], 'no listed entry was fetched');
    });

    it('a HEAD answering Docker-Content-Digest: <a tag> is a DIGEST_INVALID error; that "digest" is never fetched nor written', async () => {
      const evil = variant(victim, 'head');
      hostile.routes.push((req) =>
        is(req, 'HEAD', 'upstream/app', 'manifests/v1.0') ? manifestAnswer(source.bytes, source.mediaType, { 'docker-content-digest': 'sneaky-head-tag' }) : undefined,
      );
      hostile.manifest('upstream/app', 'sneaky-head-tag', evil.bytes, victim.mediaType);
      const repo = viaHostile.repository('upstream/app');
      await rejects(repo.headManifest('v1.0'), 'DIGEST_INVALID', new RegExp(`^HEAD manifest ${hostile.host}/upstream/app:v1.0: Docker-Content-Digest: "sneaky-head-tag" is not a digest`));
      const engine = new CopyEngine();
      await rejects(
        engine.copyImage({ source: repo, reference: 'v1.0', targets: [{ repository: real.repository('mirror/head'), tags: ['v1.0'] }], referrers: false, overwrite: true }),
        'DIGEST_INVALID',
        /sneaky-head-tag/,
      );
      hostile.routes.length = 0;
      hostile.routes.push((req) =>
        is(req, 'HEAD', 'upstream/app', 'manifests/v1.0') ? manifestAnswer(source.bytes, source.mediaType, { 'docker-content-digest': `sha512:${'a'.repeat(128)}` }) : undefined,
      );
      await rejects(repo.headManifest('v1.0'), 'DIGEST_INVALID', /unsupported digest algorithm "sha512".*only sha256/);
      assert.deepEqual(hostile.log.filter((e) => e.path.includes('sneaky')), []);
      assert.deepEqual(await tagsOf(real.repository('mirror/head')), []);
    });

    it('a manifest fetched by tag must hash to the digest its HEAD promised (no swap between HEAD and GET)', async () => {
      const other = variant(source, 'swapped');
      // HEAD: the real image's digest but no Content-Length, so the client GETs to learn the rest.
      hostile.routes.push((req) =>
        is(req, 'HEAD', 'upstream/app', 'manifests/v1.0')
          ? { status: 200, headers: { 'content-type': source.mediaType, 'docker-content-digest': source.digest } }
          : undefined,
      );
      hostile.routes.push((req) => (is(req, 'GET', 'upstream/app', 'manifests/v1.0') ? manifestAnswer(other.bytes, source.mediaType, { 'docker-content-digest': other.digest }) : undefined));
      const repo = viaHostile.repository('upstream/app');
      await rejects(repo.headManifest('v1.0'), 'DIGEST_INVALID', new RegExp(`content hashes to ${other.digest}, expected ${source.digest}`));
      await rejects(repo.getManifest('v1.0', { expectDigest: source.digest }), 'DIGEST_INVALID', /expected/);
      assert.equal((await repo.getManifest('v1.0', { expectDigest: other.digest })).digest, other.digest);
      await rejects(repo.getManifest('v1.0', { expectDigest: 'latest' }), 'DIGEST_INVALID', /expected digest: "latest" is not a digest/);
    });

    it('a GET answering a Docker-Content-Digest that is not a digest is refused', async () => {
      hostile.routes.push((req) => (is(req, 'GET', 'upstream/app', 'manifests/v1.0') ? manifestAnswer(source.bytes, source.mediaType, { 'docker-content-digest': '../x' }) : undefined));
      await rejects(viaHostile.repository('upstream/app').getManifest('v1.0'), 'DIGEST_INVALID', /Docker-Content-Digest: "\.\.\/x" is not a digest/);
    });

    it(`a manifest or listing nested deeper than MAX_JSON_DEPTH (${MAX_JSON_DEPTH}) is refused before JSON.parse (4 MiB of "[" in milliseconds)`, async () => {
      const n = MAX_MANIFEST_BYTES / 2 - 16;
      const deep = Buffer.from('['.repeat(n) + ']'.repeat(n));
      hostile.manifest('x/y', 'deep', deep, MediaType.OciManifest);
      hostile.routes.push((req) => (is(req, 'GET', 'x/y', 'tags/list') ? json(`{"tags":${'['.repeat(100_000)}${']'.repeat(100_000)}}`) : undefined));
      const started = performance.now();
      await rejects(viaHostile.repository('x/y').getManifest('deep'), 'MANIFEST_INVALID', new RegExp(`body is JSON nested deeper than ${MAX_JSON_DEPTH} levels`));
      await rejects(viaHostile.repository('x/y').listTags(), 'PROTOCOL', /response is JSON nested deeper/);
      const ms = performance.now() - started;
      // JSON.parse alone takes seconds on this body; the scan takes milliseconds.
      assert.ok(ms < 1_000, `${Math.round(ms)} ms`);
    });

    it('every request path is built from checked, encoded segments', () => {
      assert.equal(apiPath('library/nginx', 'manifests', 'v1.0'), '/v2/library/nginx/manifests/v1.0');
      assert.equal(apiPath('a/b', 'manifests', D('a')), `/v2/a/b/manifests/${D('a')}`);
      assert.equal(apiPath('a/b', 'blobs', D('b')), `/v2/a/b/blobs/${D('b')}`);
      assert.equal(apiPath('a/b', 'referrers', D('c')), `/v2/a/b/referrers/${D('c')}`);
      assert.equal(apiPath('a/b', 'tags/list'), '/v2/a/b/tags/list');
      assert.equal(apiPath('a/b', 'blobs/uploads/'), '/v2/a/b/blobs/uploads/');
      const refused: Array<[string, 'manifests' | 'blobs' | 'referrers', string, string]> = [
        ['a/b', 'manifests', 'v1/../../../../victim/app/manifests/latest', 'INVALID_REFERENCE'],
        ['a/b', 'manifests', '..', 'INVALID_REFERENCE'],
        ['a/b', 'manifests', '', 'INVALID_REFERENCE'],
        ['a/b', 'manifests', 'x?y', 'INVALID_REFERENCE'],
        ['a/b', 'manifests', 'sha256:../../x', 'DIGEST_INVALID'],
        ['a/b', 'blobs', 'latest', 'DIGEST_INVALID'],
        ['a/b', 'blobs', `sha512:${'a'.repeat(128)}`, 'DIGEST_INVALID'],
        ['a/../b', 'manifests', 'v1', 'INVALID_REFERENCE'],
        ['a//b', 'manifests', 'v1', 'INVALID_REFERENCE'],
        ['/a', 'manifests', 'v1', 'INVALID_REFERENCE'],
        ['A/b', 'manifests', 'v1', 'INVALID_REFERENCE'],
        ['a%2fb', 'manifests', 'v1', 'INVALID_REFERENCE'],
      ];
      for (const [repo, kind, ref, code] of refused) {
        assert.throws(() => apiPath(repo, kind, ref), (e: unknown) => e instanceof OciError && e.code === code, `${repo} ${kind} ${ref}`);
      }
      assert.throws(() => real.repository('a/../b'), (e: unknown) => e instanceof OciError && e.code === 'INVALID_REFERENCE');
    });
  });

  describe('listings are checked and bounded', () => {
    it('tags outside the tag grammar are dropped from a listing', async () => {
      const long = 't'.repeat(129);
      hostile.routes.push((req) =>
        is(req, 'GET', 'x/y', 'tags/list')
          ? json({ name: 'x/y', tags: ['ok', 'v1/../../a', '../a', '.a', '-a', 'a b', 'a:b', long, 't'.repeat(128), 'é', '', 1, null, {}, ['v2'], 'A_b.c-1'] })
          : undefined,
      );
      assert.deepEqual(await viaHostile.repository('x/y').listTags(), ['ok', 't'.repeat(128), 'A_b.c-1']);
    });

    it('a listing that is not a JSON object, or whose tags are not a list, is a PROTOCOL error; "tags": null is empty', async () => {
      let body: unknown = null;
      hostile.routes.push((req) => (is(req, 'GET', 'x/y', 'tags/list') ? json(JSON.stringify(body)) : undefined));
      await rejects(viaHostile.repository('x/y').listTags(), 'PROTOCOL', new RegExp(`^list tags of ${hostile.host}/x/y: response is not a JSON object$`));
      body = { tags: 'v1' };
      await rejects(viaHostile.repository('x/y').listTags(), 'PROTOCOL', /"tags" is not a list/);
      body = { name: 'x/y', tags: null };
      assert.deepEqual(await viaHostile.repository('x/y').listTags(), []);
    });

    it(`an endless Link chain stops at MAX_LIST_PAGES (${MAX_LIST_PAGES}) pages`, async () => {
      let n = 0;
      hostile.routes.push((req) => {
        if (!is(req, 'GET', 'x/y', 'tags/list')) return undefined;
        n++;
        return json({ name: 'x/y', tags: [`t${n}`] }, { link: `</v2/x/y/tags/list?n=1&last=t${n}>; rel="next"` });
      });
      await rejects(viaHostile.repository('x/y').listTags(), 'PROTOCOL', new RegExp(`more than ${MAX_LIST_PAGES} pages`));
      assert.equal(n, MAX_LIST_PAGES);
    });

    it(`more than MAX_TAGS_PER_LISTING (${MAX_TAGS_PER_LISTING}) tags across pages is refused`, async () => {
      const half = Math.ceil((MAX_TAGS_PER_LISTING + 1) / 2);
      let page = 0;
      hostile.routes.push((req) => {
        if (!is(req, 'GET', 'x/y', 'tags/list')) return undefined;
        page++;
        const tags = Array.from({ length: half }, (_, i) => `p${page}-${i}`);
        return json({ name: 'x/y', tags }, page === 1 ? { link: '</v2/x/y/tags/list?last=z>; rel="next"' } : {});
      });
      await rejects(viaHostile.repository('x/y').listTags(), 'PROTOCOL', new RegExp(`more than ${MAX_TAGS_PER_LISTING} tags`));
      assert.equal(page, 2);
    });

    it(`pages adding up to more than MAX_TAG_LISTING_BYTES (${MAX_TAG_LISTING_BYTES}) are refused without reading on`, async () => {
      const pad = 'x'.repeat(1024 * 1024);
      let pages = 0;
      hostile.routes.push((req) => {
        if (!is(req, 'GET', 'x/y', 'tags/list')) return undefined;
        pages++;
        return json({ name: 'x/y', tags: [`t${pages}`], pad }, { link: `</v2/x/y/tags/list?last=t${pages}>; rel="next"` });
      });
      await rejects(viaHostile.repository('x/y').listTags(), 'PROTOCOL', new RegExp(`larger than ${MAX_TAG_LISTING_BYTES} bytes`));
      // Each page is a little over 1 MiB: the bound is crossed on page 16, and nothing is read after it.
      assert.equal(pages, MAX_TAG_LISTING_BYTES / pad.length);
    });

    it('a Link to another endpoint is refused and not followed', async () => {
      hostile.routes.push((req) => (is(req, 'GET', 'x/y', 'tags/list') ? json({ tags: ['a'] }, { link: '</v2/victim/app/manifests/latest>; rel="next"' }) : undefined));
      await rejects(viaHostile.repository('x/y').listTags(), 'PROTOCOL', /Link header leads to another endpoint/);
      assert.deepEqual(hostile.log.filter((e) => e.path.includes('victim')), []);
    });

    it(`referrers: more than MAX_REFERRERS_PER_SUBJECT (${MAX_REFERRERS_PER_SUBJECT}) entries, bad shapes and more than MAX_REFERRERS_LISTING_BYTES are refused`, async () => {
      const subject = D('e');
      const entry = (i: number): object => ({ mediaType: MediaType.OciManifest, digest: `sha256:${i.toString(16).padStart(64, '0')}`, size: 100 });
      let answer: () => { manifests: unknown; pad?: string; link?: string } = () => ({ manifests: [] });
      let pages = 0;
      hostile.routes.push((req) => {
        if (!is(req, 'GET', 'x/y', `referrers/${subject}`)) return undefined;
        pages++;
        const { link, ...body } = answer();
        return json({ schemaVersion: 2, mediaType: MediaType.OciIndex, ...body }, { 'content-type': MediaType.OciIndex, ...(link ? { link } : {}) });
      });
      // A client of its own: another test taught the shared one that this host has no referrers API.
      const client = new RegistryClient(hostile.host);
      const repo = (): Repository => client.repository('x/y');
      try {
        const ok = Array.from({ length: MAX_REFERRERS_PER_SUBJECT }, (_, i) => entry(i));
        answer = () => ({ manifests: ok });
        assert.equal((await repo().referrers(subject))?.length, MAX_REFERRERS_PER_SUBJECT);
        answer = () => ({ manifests: [...ok, entry(MAX_REFERRERS_PER_SUBJECT)] });
        await rejects(repo().referrers(subject), 'PROTOCOL', new RegExp(`more than ${MAX_REFERRERS_PER_SUBJECT} referrers`));
        answer = () => ({ manifests: [{ ...entry(1), size: -1 }] });
        await rejects(repo().referrers(subject), 'MANIFEST_INVALID', /manifests\[0\]: size is not a non-negative integer/);
        answer = () => ({ manifests: [{ ...entry(1), annotations: { a: 1 } }] });
        await rejects(repo().referrers(subject), 'MANIFEST_INVALID', /annotations is not a map of strings/);
        answer = () => ({ manifests: 'all' });
        await rejects(repo().referrers(subject), 'MANIFEST_INVALID', /manifests is not a list/);
        pages = 0;
        answer = () => ({ manifests: [entry(pages)], pad: 'x'.repeat(512 * 1024), link: `</v2/x/y/referrers/${subject}?page=${pages}>; rel="next"` });
        await rejects(repo().referrers(subject), 'PROTOCOL', new RegExp(`larger than ${MAX_REFERRERS_LISTING_BYTES} bytes`));
        // Each page a little over 512 KiB: the bound is crossed on page 8, and nothing is read after it.
        assert.equal(pages, MAX_REFERRERS_LISTING_BYTES / (512 * 1024));
      } finally {
        await client.close();
      }
    });
  });
});
