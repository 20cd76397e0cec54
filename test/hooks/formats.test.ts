/**
 * Each format's documented sample payload (test/hooks/fixtures, sources in its README) reads to the
 * push it describes; what is not an image push is counted `ignored`; a malformed body is a typed
 * 400 error; the bounds on entries and field lengths hold.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_EVENTS_PER_BODY, MAX_FIELD_LENGTH, WebhookPayloadError, parsePayload, type ParseOptions, type ParsedPayload, type WebhookFormat } from '../../src/hooks/formats.js';
import { MAX_JSON_DEPTH } from '../../src/oci/json.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const fixture = (name: string): Buffer => readFileSync(join(FIXTURES, name));
const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

function parse(format: WebhookFormat, body: Buffer, o?: ParseOptions): ParsedPayload {
  return parsePayload(format, body, o);
}

function rejects(format: WebhookFormat, body: Buffer, pattern: RegExp): void {
  assert.throws(
    () => parsePayload(format, body),
    (e: unknown) => e instanceof WebhookPayloadError && e.status === 400 && pattern.test(e.message) && !/[\r\n]/.test(e.message),
  );
}

describe('hooks: payload formats', () => {
  describe('documented samples', () => {
    const cases: Array<{ file: string; format: WebhookFormat; o?: ParseOptions; want: ParsedPayload }> = [
      {
        file: 'distribution-docs-push.json',
        format: 'distribution',
        // The manifest push (by digest, no tag); the two layer pushes are not image pushes.
        want: {
          events: [{ registry: 'registrycluster.local', repository: 'library/test', digest: 'sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf' }],
          ignored: 2,
          invalid: 0,
        },
      },
      { file: 'distribution-docs-pull.json', format: 'distribution', want: { events: [], ignored: 1, invalid: 0 } },
      {
        file: 'distribution-2.8.2-tag-push.json',
        format: 'distribution',
        want: {
          events: [{ registry: '127.0.0.1:33297', repository: 'team/app', tag: '1.2.3', digest: 'sha256:862e6a771af18b3baf4c7c768626ddda0998083425a7f48f8fbd8559209a9cc2' }],
          ignored: 0,
          invalid: 0,
        },
      },
      {
        file: 'harbor-docs-default.json',
        format: 'harbor',
        want: {
          events: [{ registry: 'hub.harbor.com', repository: 'test-webhook/debian', tag: 'latest', digest: 'sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8' }],
          ignored: 0,
          invalid: 0,
        },
      },
      {
        file: 'harbor-docs-cloudevents.json',
        format: 'harbor',
        // A push by digest: `tag` repeats the digest and is no tag.
        want: {
          events: [{ registry: 'localhost', repository: 'harbor/alpine', digest: 'sha256:954b378c375d852eb3c63ab88978f640b4348b01c1b3456a024a81536dafbbf4' }],
          ignored: 0,
          invalid: 0,
        },
      },
      { file: 'dockerhub-docs.json', format: 'dockerhub', want: { events: [{ registry: 'docker.io', repository: 'svendowideit/testhook', tag: 'latest' }], ignored: 0, invalid: 0 } },
      { file: 'quay-docs.json', format: 'quay', want: { events: [{ registry: 'quay.io', repository: 'dgangaia/test', tag: 'latest' }], ignored: 0, invalid: 0 } },
      { file: 'quay-2013.json', format: 'quay', want: { events: [{ registry: 'quay.io', repository: 'devtable/ubuntu', tag: 'latest' }], ignored: 0, invalid: 0 } },
      {
        file: 'ghcr-octokit-published.json',
        format: 'ghcr',
        o: { githubEvent: 'registry_package' },
        // Owner lowercased (ghcr names are lowercase), the trailing ":" is no tag, and the sample's
        // 40-hex "sha256:" digest is not a digest.
        want: { events: [{ registry: 'ghcr.io', repository: 'codertocat/hello-world' }], ignored: 0, invalid: 0 },
      },
      {
        file: 'gitlab-registry-spec.json',
        format: 'gitlab',
        o: { defaultRegistry: 'registry.gitlab.example.com' },
        want: { events: [{ registry: 'registry.gitlab.example.com', repository: 'group/project', tag: 'latest' }], ignored: 1, invalid: 0 },
      },
      {
        file: 'gitlab-registry-spec.json',
        format: 'gitlab',
        // No host in the payload and none configured: the push names no registry (it matches nothing).
        want: { events: [{ repository: 'group/project', tag: 'latest' }], ignored: 1, invalid: 0 },
      },
    ];
    for (const c of cases) {
      it(`${c.format}: ${c.file}${c.o?.defaultRegistry ? ' (with a configured host)' : ''}`, () => {
        assert.deepEqual(parse(c.format, fixture(c.file), c.o), c.want);
      });
    }
  });

  describe('distribution and gitlab envelopes', () => {
    const ev = (over: Record<string, unknown>, host: unknown = 'reg.example.com:5000') => ({
      action: 'push',
      target: { mediaType: 'application/vnd.oci.image.index.v1+json', repository: 'team/app', tag: 'v1' },
      request: { host },
      ...over,
    });

    it('canonicalises the host: Docker Hub aliases, case, :443, and library/ for one-component Hub names', () => {
      const got = parse('distribution', json({ events: [ev({}, 'Registry-1.Docker.IO'), ev({}, 'REG.example.com:443'), ev({ target: { repository: 'nginx', tag: '1' } }, 'index.docker.io')] }));
      assert.deepEqual(got.events, [
        { registry: 'docker.io', repository: 'team/app', tag: 'v1' },
        { registry: 'reg.example.com', repository: 'team/app', tag: 'v1' },
        { registry: 'docker.io', repository: 'library/nginx', tag: '1' },
      ]);
    });

    it('a single-label host is not a registry name (it would read as a Docker Hub path): invalid, not misread', () => {
      const got = parse('distribution', json({ events: [ev({}, 'registry'), ev({}, 'registry:5000')] }));
      assert.deepEqual(got.events, [{ registry: 'registry:5000', repository: 'team/app', tag: 'v1' }]);
      assert.equal(got.invalid, 1);
    });

    it('pulls, deletes, mounts and layer or config uploads are ignored; a push without a repository is invalid', () => {
      const got = parse(
        'distribution',
        json({
          events: [
            ev({ action: 'pull' }),
            ev({ action: 'delete' }),
            ev({ action: 'mount' }),
            ev({ target: { mediaType: 'application/octet-stream', repository: 'team/app', digest: `sha256:${'a'.repeat(64)}` } }),
            ev({ target: { mediaType: 'application/vnd.oci.image.config.v1+json', repository: 'team/app' } }),
            ev({ target: { tag: 'v1' } }),
            ev({ target: { repository: 'Team/App', tag: 'v1' } }),
          ],
        }),
      );
      assert.deepEqual(got, { events: [], ignored: 5, invalid: 2 });
    });

    it('a tag or digest outside the grammar is dropped, the push kept', () => {
      const got = parse('distribution', json({ events: [ev({ target: { repository: 'team/app', tag: '-bad', digest: 'sha256:short' } })] }));
      assert.deepEqual(got.events, [{ registry: 'reg.example.com:5000', repository: 'team/app' }]);
    });

    it('gitlab prefers the payload host over the configured one', () => {
      const got = parse('gitlab', json({ events: [ev({}, 'registry.gitlab.example.com')] }), { defaultRegistry: 'other.example.com' });
      assert.deepEqual(got.events, [{ registry: 'registry.gitlab.example.com', repository: 'team/app', tag: 'v1' }]);
    });

    it('distribution does not take the configured host: its sender always says which host was pushed to', () => {
      const got = parse('distribution', json({ events: [ev({ request: {} })] }), { defaultRegistry: 'other.example.com' });
      assert.deepEqual(got.events, [{ repository: 'team/app', tag: 'v1' }]);
    });
  });

  describe('harbor, dockerhub, quay and ghcr details', () => {
    it('harbor: other event types are ignored; without resource_url the repo_full_name and a configured host are used', () => {
      assert.deepEqual(parse('harbor', json({ type: 'PULL_ARTIFACT', event_data: {} })), { events: [], ignored: 1, invalid: 0 });
      assert.deepEqual(parse('harbor', json({ specversion: '1.0', type: 'harbor.artifact.deleted', data: {} })), { events: [], ignored: 1, invalid: 0 });
      const body = json({ type: 'PUSH_ARTIFACT', event_data: { resources: [{ tag: 'v2' }], repository: { repo_full_name: 'proj/app' } } });
      assert.deepEqual(parse('harbor', body, { defaultRegistry: 'harbor.example.com' }).events, [{ registry: 'harbor.example.com', repository: 'proj/app', tag: 'v2' }]);
      assert.deepEqual(parse('harbor', body).events, [{ repository: 'proj/app', tag: 'v2' }]);
      rejects('harbor', json({ type: 'PUSH_ARTIFACT' }), /event_data/);
    });

    it('dockerhub: an official image (no namespace) is docker.io/library/<name>', () => {
      const got = parse('dockerhub', json({ push_data: { tag: '1.27' }, repository: { repo_name: 'nginx' } }));
      assert.deepEqual(got.events, [{ registry: 'docker.io', repository: 'library/nginx', tag: '1.27' }]);
      rejects('dockerhub', json({ hello: 1 }), /repo_name/);
    });

    it('quay: a self-hosted Quay names its host in docker_url; events without updated_tags (builds) are ignored', () => {
      const got = parse('quay', json({ docker_url: 'quay.corp.example:8443/ns/app', repository: 'ns/app', updated_tags: ['a', 'b', '..bad'] }));
      assert.deepEqual(got, {
        events: [
          { registry: 'quay.corp.example:8443', repository: 'ns/app', tag: 'a' },
          { registry: 'quay.corp.example:8443', repository: 'ns/app', tag: 'b' },
        ],
        ignored: 0,
        invalid: 1,
      });
      assert.deepEqual(parse('quay', json({ build_id: 'x', docker_url: 'quay.io/ns/app', docker_tags: ['latest'] })), { events: [], ignored: 1, invalid: 0 });
      rejects('quay', json({ updated_tags: 'latest' }), /updated_tags/);
    });

    it('ghcr: the tag keeps its case; ping, other actions and other package types are ignored', () => {
      const pkg = (over: Record<string, unknown> = {}, version: Record<string, unknown> = {}) => ({
        action: 'published',
        registry_package: {
          name: 'App',
          package_type: 'CONTAINER',
          owner: { login: 'Octo-Org' },
          package_version: { package_url: 'ghcr.io/Octo-Org/App:Nightly-1', container_metadata: { tag: { name: '', digest: `sha256:${'b'.repeat(64)}` } }, ...version },
          ...over,
        },
      });
      assert.deepEqual(parse('ghcr', json(pkg()), { githubEvent: 'registry_package' }).events, [
        { registry: 'ghcr.io', repository: 'octo-org/app', tag: 'Nightly-1', digest: `sha256:${'b'.repeat(64)}` },
      ]);
      // The `package` event of a repository webhook has the same shape under `package`.
      const asPackage = { action: 'updated', package: pkg().registry_package };
      assert.equal(parse('ghcr', json(asPackage), { githubEvent: 'package' }).events.length, 1);
      // No package_url: owner and name.
      assert.deepEqual(parse('ghcr', json(pkg({}, { package_url: undefined, container_metadata: { tag: { name: 'v1' } } }))).events, [{ registry: 'ghcr.io', repository: 'octo-org/app', tag: 'v1' }]);
      assert.deepEqual(parse('ghcr', json({ zen: 'Keep it logically awesome.', hook_id: 1 }), { githubEvent: 'ping' }), { events: [], ignored: 1, invalid: 0 });
      assert.deepEqual(parse('ghcr', json({ zen: 'Keep it logically awesome.', hook_id: 1 })), { events: [], ignored: 1, invalid: 0 });
      assert.deepEqual(parse('ghcr', json({ ...pkg(), action: 'deleted' })), { events: [], ignored: 1, invalid: 0 });
      assert.deepEqual(parse('ghcr', json(pkg({ package_type: 'npm', ecosystem: 'npm' }))), { events: [], ignored: 1, invalid: 0 });
      rejects('ghcr', json({ action: 'published' }), /registry_package/);
    });
  });

  describe('malformed bodies: typed 400 errors', () => {
    for (const format of ['distribution', 'harbor', 'dockerhub', 'quay', 'ghcr', 'gitlab'] as const) {
      it(`${format}: not JSON, empty, not an object`, () => {
        rejects(format, Buffer.from('{"events": ['), /not valid JSON/);
        rejects(format, Buffer.alloc(0), /empty body/);
        rejects(format, Buffer.from('[1,2]'), /JSON object/);
        rejects(format, Buffer.from('"push"'), /JSON object/);
        rejects(format, Buffer.from('null'), /JSON object/);
      });
    }

    it(`nesting deeper than MAX_JSON_DEPTH (${MAX_JSON_DEPTH}) is refused before JSON.parse`, () => {
      rejects('distribution', Buffer.from('{"a":' + '['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH) + '}'), /nested deeper/);
      // At the bound it parses (and is simply not an envelope).
      rejects('distribution', Buffer.from('{"a":' + '['.repeat(MAX_JSON_DEPTH - 1) + ']'.repeat(MAX_JSON_DEPTH - 1) + '}'), /events must be an array/);
    });

    it('an envelope whose events are not an array of objects', () => {
      rejects('distribution', json({ events: 'push' }), /events must be an array/);
      rejects('distribution', json({ events: [1] }), /must be objects/);
      rejects('harbor', json({ type: 'PUSH_ARTIFACT', event_data: { resources: {} } }), /resources must be an array/);
    });
  });

  describe('bounds', () => {
    const push = (i: number) => ({ action: 'push', target: { repository: 'team/app', tag: `t${i}` }, request: { host: 'reg.example.com' } });

    it(`MAX_EVENTS_PER_BODY (${MAX_EVENTS_PER_BODY}) entries are read; one more refuses the body`, () => {
      const at = Array.from({ length: MAX_EVENTS_PER_BODY }, (_, i) => push(i));
      assert.equal(parse('distribution', json({ events: at })).events.length, MAX_EVENTS_PER_BODY);
      rejects('distribution', json({ events: [...at, push(-1)] }), new RegExp(`${MAX_EVENTS_PER_BODY + 1} entries, at most ${MAX_EVENTS_PER_BODY}`));
      const tags = Array.from({ length: MAX_EVENTS_PER_BODY + 1 }, (_, i) => `t${i}`);
      rejects('quay', json({ docker_url: 'quay.io/a/b', updated_tags: tags }), /updated_tags has/);
    });

    it(`a field longer than MAX_FIELD_LENGTH (${MAX_FIELD_LENGTH}) makes its entry invalid; at the bound it is read`, () => {
      const entry = (mediaType: string) => ({ action: 'push', target: { repository: 'team/app', mediaType }, request: { host: 'reg.example.com' } });
      // At the bound: read, and an unknown media type is not an image push (ignored).
      assert.deepEqual(parse('distribution', json({ events: [entry('x'.repeat(MAX_FIELD_LENGTH))] })), { events: [], ignored: 1, invalid: 0 });
      // One over: not read at all (invalid).
      assert.deepEqual(parse('distribution', json({ events: [entry('x'.repeat(MAX_FIELD_LENGTH + 1))] })), { events: [], ignored: 0, invalid: 1 });
      const host = { action: 'push', target: { repository: 'team/app' }, request: { host: `${'a'.repeat(MAX_FIELD_LENGTH)}.com` } };
      assert.deepEqual(parse('distribution', json({ events: [host] })), { events: [], ignored: 0, invalid: 1 });
    });
  });
});
