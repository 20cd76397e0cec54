/**
 * Property tests for every format parser: arbitrary bytes, arbitrary JSON, and payload-shaped
 * objects whose fields hold anything. Each returns or throws WebhookPayloadError (400, one line) —
 * never a TypeError from a missing field — within a time bound, and what it returns is bounded and
 * satisfies the grammar matching relies on (canonical registry, valid repository, tag, digest).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_EVENTS_PER_BODY, WEBHOOK_FORMATS, WebhookPayloadError, parsePayload, type ParsedPayload, type WebhookFormat } from '../../src/hooks/formats.js';
import { isValidRepository } from '../../src/oci/names.js';
import { canonicalRegistry, isValidDigest, isValidTag } from '../../src/oci/reference.js';

const RUNS = 300;
const TIME_BOUND_MS = 250;

function check(format: WebhookFormat, body: Uint8Array): ParsedPayload | undefined {
  const t = performance.now();
  try {
    const out = parsePayload(format, body, { defaultRegistry: 'fallback.example.com' });
    assert.ok(out.events.length <= MAX_EVENTS_PER_BODY * 2, `${out.events.length} events`);
    assert.ok(Number.isInteger(out.ignored) && Number.isInteger(out.invalid) && out.ignored >= 0 && out.invalid >= 0);
    for (const e of out.events) {
      if (e.registry !== undefined) assert.equal(canonicalRegistry(e.registry), e.registry, `registry ${e.registry} not canonical`);
      assert.ok(isValidRepository(e.repository), `repository ${JSON.stringify(e.repository)}`);
      if (e.tag !== undefined) assert.ok(isValidTag(e.tag), `tag ${JSON.stringify(e.tag)}`);
      if (e.digest !== undefined) assert.ok(isValidDigest(e.digest), `digest ${JSON.stringify(e.digest)}`);
    }
    return out;
  } catch (e) {
    assert.ok(e instanceof WebhookPayloadError, `threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    assert.equal(e.status, 400);
    assert.ok(e.message.length > 0 && !/[\r\n]/.test(e.message));
    return undefined;
  } finally {
    const took = performance.now() - t;
    assert.ok(took < TIME_BOUND_MS, `${took.toFixed(1)} ms`);
  }
}

const anyString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('', 'push', 'pull', 'PUSH_ARTIFACT', 'harbor.artifact.pushed', 'published', 'CONTAINER', 'docker', 'latest', 'v1.2.3', 'registry', 'a:b', 'Team/App', 'x'.repeat(2000)),
  fc.constantFrom('reg.example.com', 'localhost:5000', '[::1]:5000', 'REG.Example.COM:443', 'index.docker.io', 'quay.io/ns/app', 'ghcr.io/Owner/App:', 'ghcr.io/o/a:Tag', 'hub.harbor.com/p/r:t', 'h/p/r@sha256:' + 'a'.repeat(64)),
  fc.constantFrom(`sha256:${'0'.repeat(64)}`, `sha512:${'f'.repeat(128)}`, 'sha256:short', 'application/vnd.oci.image.manifest.v1+json', 'application/octet-stream'),
);
const leaf = fc.oneof(anyString, fc.integer(), fc.boolean(), fc.constant(null), fc.double());
const anyValue = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', maxDepth: 4 }, leaf, fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(anyString, tie('value'), { maxKeys: 4 })),
})).value;
/** Mostly the right shape, sometimes the wrong type in its place, sometimes missing. */
const maybe = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<unknown> =>
  fc.oneof({ arbitrary: a, weight: 14 }, { arbitrary: anyValue, weight: 1 }, { arbitrary: fc.constant(undefined), weight: 1 });
/** Field values that are usually valid, so the parsers' success paths are explored too. */
const host = fc.oneof(fc.constantFrom('reg.example.com', 'localhost:5000', '[::1]:5000', 'REG.Example.COM:443', 'index.docker.io', 'registry', ''), anyString);
const repo = fc.oneof(fc.stringMatching(/^[a-z0-9]{1,8}(\/[a-z0-9]{1,8}){0,2}$/), fc.constantFrom('Team/App', 'nginx', 'a//b', 'a/b:c'), anyString);
const tag = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,12}$/), fc.constantFrom(`sha256:${'1'.repeat(64)}`, '-x', ''), anyString);
const digest = fc.oneof(fc.constantFrom(`sha256:${'0'.repeat(64)}`, `sha256:${'A'.repeat(64)}`, 'sha256:short'), anyString);
const url = fc.oneof(
  fc.tuple(host, repo, tag).map(([h, r, t]) => `${h}/${r}:${t}`),
  fc.tuple(host, repo).map(([h, r]) => `${h}/${r}:`),
  fc.tuple(host, repo, digest).map(([h, r, d]) => `${h}/${r}@${d}`),
  anyString,
);

const distributionLike = fc.record({
  events: maybe(
    fc.array(
      fc.record({
        action: maybe(fc.constantFrom('push', 'push', 'pull', 'delete', 'mount')),
        target: maybe(fc.record({ mediaType: maybe(fc.constantFrom('application/vnd.oci.image.manifest.v1+json', 'application/octet-stream')), repository: maybe(repo), tag: maybe(tag), digest: maybe(digest) })),
        request: maybe(fc.record({ host: maybe(host) })),
      }),
      { maxLength: 8 },
    ),
  ),
});
const harborLike = fc.record({
  specversion: maybe(fc.constant('1.0')),
  type: maybe(fc.constantFrom('PUSH_ARTIFACT', 'harbor.artifact.pushed', 'PULL_ARTIFACT')),
  event_data: maybe(fc.record({ resources: maybe(fc.array(fc.record({ digest: maybe(digest), tag: maybe(tag), resource_url: maybe(url) }), { maxLength: 5 })), repository: maybe(fc.record({ repo_full_name: maybe(repo) })) })),
  data: maybe(fc.record({ resources: maybe(fc.array(fc.record({ tag: maybe(tag), resource_url: maybe(url) }), { maxLength: 5 })) })),
});
const dockerhubLike = fc.record({ push_data: maybe(fc.record({ tag: maybe(tag) })), repository: maybe(fc.record({ repo_name: maybe(repo) })) });
const quayLike = fc.record({
  docker_url: maybe(fc.oneof(fc.tuple(host, repo).map(([h, r]) => `${h}/${r}`), anyString)),
  repository: maybe(repo),
  updated_tags: maybe(fc.oneof(fc.array(tag, { maxLength: 5 }), fc.dictionary(tag, anyString, { maxKeys: 5 }))),
});
const ghcrLike = fc.record({
  action: maybe(fc.constantFrom('published', 'updated', 'deleted')),
  zen: fc.option(anyString, { nil: undefined }),
  registry_package: maybe(
    fc.record({
      name: maybe(repo),
      package_type: maybe(fc.constantFrom('CONTAINER', 'docker', 'npm')),
      ecosystem: maybe(anyString),
      owner: maybe(fc.record({ login: maybe(fc.constantFrom('Octo-Org', 'a', '')) })),
      package_version: maybe(fc.record({ package_url: maybe(url), container_metadata: maybe(fc.record({ tag: maybe(fc.record({ name: maybe(tag), digest: maybe(digest) })) })) })),
    }),
  ),
});

const SHAPED: Record<WebhookFormat, fc.Arbitrary<unknown>> = {
  distribution: distributionLike,
  gitlab: distributionLike,
  harbor: harborLike,
  dockerhub: dockerhubLike,
  quay: quayLike,
  ghcr: ghcrLike,
};

describe('hooks: payload parsers under arbitrary input (fast-check)', function () {
  this.timeout(60_000);

  for (const format of WEBHOOK_FORMATS) {
    describe(format, () => {
      it('arbitrary bytes', () => {
        fc.assert(
          fc.property(fc.uint8Array({ maxLength: 512 }), (b) => {
            check(format, b);
          }),
          { numRuns: RUNS },
        );
      });

      it('arbitrary JSON', () => {
        fc.assert(
          fc.property(fc.json({ maxDepth: 5 }), (text) => {
            check(format, Buffer.from(text));
          }),
          { numRuns: RUNS },
        );
      });

      it('payload-shaped objects with anything in their fields', () => {
        fc.assert(
          fc.property(SHAPED[format], (doc) => {
            check(format, Buffer.from(JSON.stringify(doc) ?? 'null'));
          }),
          { numRuns: RUNS },
        );
      });
    });
  }

  it('deep nesting and a large body of many entries stay within the time bound', () => {
    for (const format of WEBHOOK_FORMATS) {
      check(format, Buffer.from('{"events":' + '['.repeat(200_000) + ']'.repeat(200_000) + '}'));
      const events = Array.from({ length: MAX_EVENTS_PER_BODY }, (_, i) => ({ action: 'push', target: { repository: `team/app${i}`, tag: `v${i}` }, request: { host: 'reg.example.com' } }));
      check(format, Buffer.from(JSON.stringify({ events, updated_tags: events.map((e) => e.target.tag), docker_url: 'quay.io/a/b' })));
    }
  });
});
