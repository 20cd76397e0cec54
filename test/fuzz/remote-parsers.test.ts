/**
 * Property tests for every parser that takes what a registry (or a user) sends: image references,
 * the name validators and request-path builder, manifests and image trees built from arbitrary
 * JSON bytes, tags/list and referrers pages, and Link headers. Whatever the input, each returns or
 * throws an OciError (or Error) with a one-line message — never a TypeError from a missing field, a
 * hang or unbounded memory — and what it returns satisfies the grammar the rest of the code relies on.
 *
 * The image trees are served by a small Repository over a Map that verifies digests as a registry
 * client does: test support standing in for a registry, not a replacement of our own code.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { ImageReader, MAX_IMAGE_BLOBS, MAX_IMAGE_MANIFESTS, ManifestCache, allBlobs, allNodes, parseManifest } from '../../src/copy/image-tree.js';
import type { BlobReader, Descriptor, ManifestInfo, PutBlobResult, RawManifest, Repository } from '../../src/oci/content.js';
import { OciError } from '../../src/oci/errors.js';
import { nextLink } from '../../src/oci/http.js';
import { MAX_JSON_DEPTH, parseRegistryJson } from '../../src/oci/json.js';
import { MAX_TAGS_PER_LISTING, ReferrersListing, TagListing, nextPageUrl } from '../../src/oci/listing.js';
import { MediaType } from '../../src/oci/media-types.js';
import { apiPath, digestProblem, isSha256Digest, isValidRepository, isValidTag, quote } from '../../src/oci/names.js';
import { parseReference, parseRepository } from '../../src/oci/reference.js';

const LINE_BREAK = /[\r\n\u2028\u2029]/;

function sha256(b: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

function checkError(e: unknown, codes?: readonly string[]): OciError {
  assert.ok(e instanceof OciError, `threw a non-OciError: ${String(e)}`);
  assert.ok(e.message.length > 0 && !LINE_BREAK.test(e.message), `not one line: ${JSON.stringify(e.message.slice(0, 200))}`);
  if (codes) assert.ok(codes.includes(e.code), `unexpected code ${e.code}: ${e.message}`);
  return e;
}

/** Runs fn within `ms`; it must return, or throw a one-line OciError with one of `codes`. */
function bounded<T>(ms: number, codes: readonly string[], fn: () => T): T | undefined {
  const t = performance.now();
  try {
    return fn();
  } catch (e) {
    checkError(e, codes);
    return undefined;
  } finally {
    const took = performance.now() - t;
    assert.ok(took < ms, `${took.toFixed(1)} ms (bound ${ms})`);
  }
}

async function boundedAsync<T>(ms: number, codes: readonly string[], fn: () => Promise<T>): Promise<T | undefined> {
  const t = performance.now();
  try {
    return await fn();
  } catch (e) {
    checkError(e, codes);
    return undefined;
  } finally {
    const took = performance.now() - t;
    assert.ok(took < ms, `${took.toFixed(1)} ms (bound ${ms})`);
  }
}

const fromUnits = (units: string[], maxLength: number): fc.Arbitrary<string> => fc.array(fc.constantFrom(...units), { maxLength }).map((a) => a.join(''));
/** Long runs of a short unit (thousands of times): the shape that makes a parser go quadratic. */
const longRun = (units: string[]): fc.Arbitrary<string> => {
  const short = units.filter((u) => u.length <= 3);
  return fc.tuple(fc.constantFrom(...short), fc.integer({ min: 1_000, max: 20_000 }), fromUnits(units, 6)).map(([u, n, tail]) => u.repeat(n) + tail);
};

const HEX64 = 'ab'.repeat(32);
const NAME_UNITS = ['a', 'z', '0', '9', 'A', '.', '..', '_', '__', '-', '--', '/', '//', ':', '@', '%2f', '%2e', '?', '#', ' ', '\n', '\u2028', 'é', '[', ']', 'localhost', 'docker.io', ':5000', '[::1]', 'sha256', `sha256:${HEX64}`, 'sha512:', HEX64, '\\'];
const nameish = fc.oneof({ weight: 4, arbitrary: fromUnits(NAME_UNITS, 24) }, { weight: 1, arbitrary: longRun(NAME_UNITS) }, { weight: 1, arbitrary: fc.string({ maxLength: 80 }) });

describe('remote and user input parsers (properties)', function () {
  this.timeout(60_000);

  describe('image references', () => {
    it('parseReference / parseRepository return or throw a one-line INVALID_REFERENCE, quickly; what they return builds a request path', () => {
      fc.assert(
        fc.property(nameish, (s) => {
          const ref = bounded(200, ['INVALID_REFERENCE'], () => parseReference(s));
          bounded(200, ['INVALID_REFERENCE'], () => parseRepository(s));
          if (!ref) return;
          // The user-side grammar is within the wire-side one: a parsed reference is never refused
          // by the path builder, except for a digest algorithm whose content cannot be verified.
          assert.ok(isValidRepository(ref.repository), ref.repository);
          if (ref.tag !== undefined) assert.ok(isValidTag(ref.tag));
          const reference = ref.digest ?? ref.tag ?? 'latest';
          const code = ref.digest !== undefined && !isSha256Digest(ref.digest) ? 'DIGEST_INVALID' : undefined;
          try {
            apiPath(ref.repository, 'manifests', reference);
            assert.equal(code, undefined);
          } catch (e) {
            assert.equal(checkError(e).code, code);
          }
        }),
        { numRuns: 800 },
      );
    });
  });

  describe('names and request paths', () => {
    it('validators never throw on any value; apiPath returns a path no URL parser rewrites, or a one-line typed error', () => {
      fc.assert(
        fc.property(fc.oneof(nameish, fc.anything()), nameish, fc.constantFrom('manifests', 'blobs', 'referrers', 'tags/list', 'blobs/uploads/') as fc.Arbitrary<'manifests'>, (repo, ref, kind) => {
          isValidTag(repo);
          isValidRepository(repo);
          const problem = digestProblem(repo);
          if (problem !== undefined) assert.ok(!LINE_BREAK.test(problem));
          const withRef = kind === 'manifests' || kind === 'blobs' || kind === 'referrers';
          const path = bounded(50, ['INVALID_REFERENCE', 'DIGEST_INVALID'], () => apiPath(repo as string, kind, withRef ? ref : undefined));
          if (path === undefined) return;
          assert.equal(new URL(path, 'http://r.example').pathname, path, 'no dot segment, nothing to re-encode');
          assert.ok(path.startsWith(`/v2/${repo as string}/${kind}`));
          if (withRef) assert.ok(isValidTag(ref) || isSha256Digest(ref));
        }),
        { numRuns: 1000 },
      );
    });

    it('quote() keeps any string on one line', () => {
      fc.assert(
        fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
          assert.ok(!LINE_BREAK.test(quote(s)));
        }),
        { numRuns: 300 },
      );
    });
  });

  describe('manifests and image trees', () => {
    /** A Repository over a Map: verifies what it serves by digest, as a registry client does. */
    class MapRepository implements Repository {
      readonly registry = 'fuzz.example';
      readonly repository = 'fuzz/app';
      readonly identity = 'fuzz';
      readonly blobStore = 'fuzz.example';
      readonly capabilities = { mount: 'no', referrersApi: 'no', tagListing: false } as const;
      gets = 0;
      mountBlob(): Promise<boolean> {
        throw new Error('not used');
      }
      constructor(private readonly docs: Map<string, Uint8Array>) {}
      async getManifest(reference: string): Promise<RawManifest> {
        this.gets++;
        const bytes = this.docs.get(reference);
        if (!bytes) throw new OciError({ code: 'MANIFEST_UNKNOWN', message: `fuzz.example/fuzz/app@${quote(reference)}: not found` });
        const digest = sha256(bytes);
        if (digest !== reference) throw new OciError({ code: 'DIGEST_INVALID', message: `content hashes to ${digest}` });
        let mediaType: string = MediaType.OciManifest;
        try {
          const j = JSON.parse(Buffer.from(bytes).toString('utf8')) as { mediaType?: unknown; manifests?: unknown };
          if (typeof j?.mediaType === 'string') mediaType = j.mediaType;
          else if (Array.isArray(j?.manifests)) mediaType = MediaType.OciIndex;
        } catch {
          // the tree reader decides what unparseable bytes are
        }
        return { digest, mediaType, size: bytes.length, bytes };
      }
      headManifest(): Promise<ManifestInfo | undefined> {
        throw new Error('not used');
      }
      putManifest(): Promise<string> {
        throw new Error('not used');
      }
      headBlob(): Promise<number | undefined> {
        throw new Error('not used');
      }
      getBlob(): Promise<BlobReader> {
        throw new Error('not used');
      }
      putBlob(): Promise<PutBlobResult> {
        throw new Error('not used');
      }
      listTags(): Promise<string[]> {
        throw new Error('not used');
      }
      referrers(): Promise<Descriptor[] | undefined> {
        throw new Error('not used');
      }
    }

    const TREE_CODES = ['MANIFEST_INVALID', 'DIGEST_INVALID', 'MANIFEST_UNKNOWN'];
    const garbageDigest = fc.oneof(fc.constantFrom('latest', '../../x/manifests/y', `sha512:${'a'.repeat(128)}`, `sha256:${'A'.repeat(64)}`, '', 'sha256:'), fc.string({ maxLength: 20 }), fc.anything());
    const anySize = fc.oneof(fc.nat({ max: 1_000_000 }), fc.constantFrom(-1, 1.5, Number.MAX_SAFE_INTEGER + 2, '12', null));

    /**
     * A pool of documents built bottom-up: each may list earlier ones (repeatedly, so a few KB fan
     * out to millions of paths), blobs, or garbage in any field. Returns the pool and its top.
     */
    const pool = fc
      .array(
        fc.record({
          kind: fc.constantFrom('index', 'image', 'json', 'bytes'),
          refs: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 400 })), { maxLength: 4 }),
          garbage: fc.option(fc.record({ digest: garbageDigest, size: anySize, mediaType: fc.oneof(fc.string({ maxLength: 10 }), fc.anything()) }), { nil: undefined }),
          blobs: fc.array(fc.record({ digest: fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256:${h}`), garbageDigest), size: anySize }), { maxLength: 6 }),
          json: fc.jsonValue({ maxDepth: 4 }),
          bytes: fc.uint8Array({ maxLength: 64 }),
          wrap: fc.constantFrom('manifests', 'layers', 'config', 'blobs', 'none'),
        }),
        { minLength: 1, maxLength: 10 },
      )
      .map((specs) => {
        const docs = new Map<string, Uint8Array>();
        const order: string[] = [];
        for (const s of specs) {
          let bytes: Uint8Array;
          if (s.kind === 'bytes') bytes = s.bytes;
          else if (s.kind === 'json') bytes = Buffer.from(JSON.stringify(s.wrap === 'none' ? s.json : { [s.wrap]: s.json }) ?? 'null');
          else {
            const listed: unknown[] = [];
            for (const [i, times] of s.refs) {
              if (order.length === 0) break;
              const d = order[i % order.length]!;
              for (let k = 0; k < times; k++) listed.push({ mediaType: MediaType.OciManifest, digest: d, size: docs.get(d)!.length });
            }
            if (s.garbage) listed.push(s.garbage);
            bytes = Buffer.from(
              JSON.stringify(
                s.kind === 'index'
                  ? { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: listed }
                  : { schemaVersion: 2, mediaType: MediaType.OciManifest, config: s.blobs[0] ?? { mediaType: MediaType.OciConfig, digest: sha256('{}'), size: 2 }, layers: s.blobs.slice(1) },
              ),
            );
          }
          const digest = sha256(bytes);
          if (!docs.has(digest)) order.push(digest);
          docs.set(digest, bytes);
        }
        return { docs, top: order[order.length - 1]! };
      });

    it('a tree read from arbitrary documents resolves within the bounds or fails with a one-line typed error, quickly', async () => {
      await fc.assert(
        fc.asyncProperty(pool, async ({ docs, top }) => {
          const repo = new MapRepository(docs);
          const tree = await boundedAsync(2_000, TREE_CODES, () => new ImageReader(new ManifestCache()).tree(repo, top));
          assert.ok(repo.gets <= docs.size, `each document read at most once (${repo.gets} reads of ${docs.size})`);
          if (!tree) return;
          const nodes = allNodes(tree);
          assert.ok(nodes.length <= Math.min(docs.size, MAX_IMAGE_MANIFESTS));
          const blobs = allBlobs(tree);
          assert.ok(blobs.length <= MAX_IMAGE_BLOBS);
          for (const n of nodes) {
            assert.ok(isSha256Digest(n.digest));
            for (const c of n.children) assert.ok(docs.has(c.digest));
          }
          for (const b of blobs) {
            assert.ok(isSha256Digest(b.digest), String(b.digest));
            assert.ok(Number.isSafeInteger(b.size) && b.size >= 0);
          }
        }),
        { numRuns: 300 },
      );
    });

    it('a deep fan-out (each level lists the one below up to 3,000 times) is one node per level', async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 3_000 }), async (levels, times) => {
          const docs = new Map<string, Uint8Array>();
          let below = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: sha256('{}'), size: 2 }, layers: [] }));
          docs.set(sha256(below), below);
          for (let l = 0; l < levels; l++) {
            const d = { mediaType: MediaType.OciIndex, digest: sha256(below), size: below.length };
            below = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: Array.from({ length: times }, () => d) }));
            docs.set(sha256(below), below);
          }
          const repo = new MapRepository(docs);
          const tree = await boundedAsync(3_000, ['MANIFEST_INVALID'], () => new ImageReader(new ManifestCache()).tree(repo, sha256(below)));
          if (levels > 4) {
            assert.equal(tree, undefined, 'deeper than MAX_INDEX_DEPTH');
            return;
          }
          assert.equal(allNodes(tree!).length, levels + 1);
          assert.equal(repo.gets, levels + 1);
        }),
        { numRuns: 40 },
      );
    });

    it('a Repository that does not verify content cannot make the reader wait on itself (a cycle is refused)', async () => {
      const a = 'sha256:' + 'a'.repeat(64);
      const b = 'sha256:' + 'b'.repeat(64);
      const lying: Repository = Object.assign(new MapRepository(new Map()), {
        async getManifest(reference: string): Promise<RawManifest> {
          const other = reference === a ? b : a;
          const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [{ mediaType: MediaType.OciIndex, digest: other, size: 1 }] }));
          return { digest: reference, mediaType: MediaType.OciIndex, size: bytes.length, bytes };
        },
      });
      await assert.rejects(new ImageReader(new ManifestCache()).tree(lying, a), (e: unknown) => checkError(e, ['MANIFEST_INVALID']) && /lists itself/.test((e as Error).message));
    });

    it('parseManifest on arbitrary bytes returns a checked manifest or throws a one-line MANIFEST_INVALID / DIGEST_INVALID', () => {
      const bytes = fc.oneof(
        fc.uint8Array({ maxLength: 200 }),
        fc.jsonValue({ maxDepth: 5 }).map((v) => Buffer.from(JSON.stringify(v) ?? '')),
        fc.record({ manifests: fc.anything(), layers: fc.anything(), config: fc.anything(), mediaType: fc.anything() }, { requiredKeys: [] }).map((v) => Buffer.from(JSON.stringify(v) ?? '')),
      );
      fc.assert(
        fc.property(bytes, (b) => {
          const json = bounded(200, ['MANIFEST_INVALID', 'DIGEST_INVALID'], () => parseManifest({ digest: sha256(b), mediaType: MediaType.OciManifest, size: b.length, bytes: b }, 'fuzz.example/fuzz/app'));
          if (!json) return;
          for (const d of [...(json.manifests ?? []), ...(json.layers ?? []), ...(json.config ? [json.config] : [])]) {
            assert.ok(isSha256Digest(d.digest));
            assert.ok(Number.isSafeInteger(d.size) && d.size >= 0);
          }
        }),
        { numRuns: 500 },
      );
    });
  });

  describe('JSON nesting', () => {
    it(`JSON nested deeper than MAX_JSON_DEPTH (${MAX_JSON_DEPTH}) is refused by a linear scan, up to a whole 4 MiB manifest, in milliseconds`, () => {
      const open = fc.constantFrom('[', '{"a":', '{"a":"[[[", "b":', '["\\"", ');
      fc.assert(
        fc.property(open, fc.integer({ min: 1, max: 1_000_000 }), (o, n) => {
          const close = o.startsWith('[') ? ']' : '}';
          const body = Buffer.from(o.repeat(n) + '0' + close.repeat(n));
          const parsed = bounded(150, [], () => {
            try {
              return parseRegistryJson(body);
            } catch (e) {
              assert.ok(e instanceof Error && !LINE_BREAK.test(e.message));
              assert.match(e.message, /nested deeper/);
              return 'refused';
            }
          });
          assert.equal(parsed === 'refused', n > MAX_JSON_DEPTH, `depth ${n}`);
        }),
        { numRuns: 25 },
      );
    });
  });

  describe('listings', () => {
    const ctx = { registry: 'fuzz.example', repository: 'fuzz/app', what: 'list tags of fuzz.example/fuzz/app' };
    const tagish = fc.oneof(fromUnits(NAME_UNITS, 12), fc.anything());
    const pageBody = fc.oneof(
      fc.uint8Array({ maxLength: 100 }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v) ?? '')),
      fc.record({ name: fc.anything(), tags: fc.oneof(fc.array(tagish, { maxLength: 30 }), fc.anything()) }, { requiredKeys: [] }).map((v) => Buffer.from(JSON.stringify(v) ?? '')),
      fc.record({ manifests: fc.oneof(fc.array(fc.record({ digest: fc.oneof(fc.constant(`sha256:${HEX64}`), tagish), size: fc.oneof(fc.nat(), fc.anything()), mediaType: fc.anything(), annotations: fc.anything(), artifactType: fc.anything() }, { requiredKeys: [] }), { maxLength: 10 }), fc.anything()) }, { requiredKeys: [] }).map((v) => Buffer.from(JSON.stringify(v) ?? '')),
    );

    it('tags/list pages: only valid tags come out; anything else is a one-line PROTOCOL error', () => {
      fc.assert(
        fc.property(fc.array(pageBody, { minLength: 1, maxLength: 5 }), (pages) => {
          const listing = new TagListing(ctx);
          for (const p of pages) {
            const ok = bounded(100, ['PROTOCOL'], () => {
              listing.beginPage();
              listing.addPage(p);
              return true;
            });
            if (!ok) break;
          }
          for (const t of listing.tags) assert.ok(isValidTag(t), JSON.stringify(t));
          assert.ok(listing.tags.length + listing.dropped <= MAX_TAGS_PER_LISTING);
        }),
        { numRuns: 500 },
      );
    });

    it('referrers pages: only checked descriptors come out; anything else is a one-line typed error', () => {
      fc.assert(
        fc.property(fc.array(pageBody, { minLength: 1, maxLength: 5 }), (pages) => {
          const listing = new ReferrersListing({ ...ctx, what: 'GET referrers of fuzz.example/fuzz/app' });
          for (const p of pages) {
            const ok = bounded(100, ['PROTOCOL', 'MANIFEST_INVALID', 'DIGEST_INVALID'], () => {
              listing.beginPage();
              listing.addPage(p);
              return true;
            });
            if (!ok) break;
          }
          for (const d of listing.descriptors) {
            assert.ok(isSha256Digest(d.digest));
            assert.ok(Number.isSafeInteger(d.size) && d.size >= 0);
            if (d.annotations !== undefined) assert.ok(Object.values(d.annotations).every((v) => typeof v === 'string'));
          }
        }),
        { numRuns: 500 },
      );
    });

    it('Link headers: nextLink and nextPageUrl return the same endpoint or nothing, or a one-line PROTOCOL error, quickly on long input', () => {
      const LINK_UNITS = ['<', '>', ';', ',', ' ', '\t', 'rel=', 'rel="next"', 'rel=next', '"', 'next', '/v2/fuzz/app/tags/list', '?n=1&last=a', '/v2/other/x', 'http://other.example', '//evil.example', '..', '%2e', '\n'];
      const link = fc.oneof({ weight: 3, arbitrary: fromUnits(LINK_UNITS, 20) }, { weight: 1, arbitrary: longRun(LINK_UNITS) }, { weight: 1, arbitrary: fc.string({ maxLength: 100 }) });
      const current = new URL('http://fuzz.example/v2/fuzz/app/tags/list?n=1000');
      fc.assert(
        fc.property(link, (header) => {
          const next = bounded(100, [], () => nextLink(header));
          assert.ok(next === undefined || typeof next === 'string');
          const url = bounded(100, ['PROTOCOL'], () => nextPageUrl(next, current, ctx));
          if (url) {
            assert.equal(url.origin, current.origin);
            assert.equal(url.pathname, current.pathname);
          }
        }),
        { numRuns: 800 },
      );
    });
  });
});
