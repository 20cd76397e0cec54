/**
 * Which mirrors a push concerns: canonical source repository and the mirror's selector, with the
 * same answer selectTags gives for that one tag.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MATCH_CACHE_MAX, MirrorIndex, matchMirrors, selectorMatches } from '../../src/hooks/match.js';
import type { PushEvent } from '../../src/hooks/formats.js';
import { selectTags } from '../../src/mirror/select.js';
import { API_VERSION, KIND, type ImageMirror, type SourceSpec } from '../../src/mirror/types.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

function mirror(name: string, source: SourceSpec, extra: { suspend?: boolean; namespace?: string } = {}): ImageMirror {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name, namespace: extra.namespace ?? 'team' },
    spec: { source, targets: [{ repository: 'mirror.example.com/copy' }], ...(extra.suspend ? { suspend: true } : {}) },
  };
}

const MIRRORS: ImageMirror[] = [
  mirror('hub-short', { repository: 'nginx', tags: ['1.27', 'stable'] }),
  mirror('hub-full', { repository: 'docker.io/library/nginx', tagPattern: '^1\\.27\\.[0-9]+$' }),
  mirror('hub-index', { repository: 'index.docker.io/library/nginx', semver: '>=1.26, <2' }),
  mirror('hub-api', { repository: 'registry-1.docker.io:443/library/nginx', digest: D1 }),
  mirror('quay-nginx', { repository: 'quay.io/library/nginx', tags: ['1.27'] }),
  mirror('pattern-all', { repository: 'Reg.Example.com:443/app', tagPattern: '.*' }),
  mirror('semver-v', { repository: 'reg.example.com/app', semver: '~2.1' }),
  mirror('semver-pre', { repository: 'reg.example.com/app', semver: '>=3.0.0-rc.0 <4' }),
  mirror('suspended', { repository: 'reg.example.com/app', tagPattern: '.*' }, { suspend: true }),
  mirror('bad-pattern', { repository: 'reg.example.com/app', tagPattern: '(' }),
  mirror('other-ns', { repository: 'reg.example.com/app', tags: ['edge'] }, { namespace: 'ops' }),
  mirror('no-rc', { repository: 'reg.example.com/rel', tagPattern: '^v', exclude: ['-rc\\.[0-9]+$'] }),
  mirror('listed-excluded', { repository: 'reg.example.com/rel', tags: ['v1-rc.1', 'v1'], exclude: ['-rc'] }),
];

describe('hooks: matching pushes to mirrors', () => {
  const cases: Array<[string, PushEvent, string[]]> = [
    ['listed tag, every Docker Hub spelling of the source', { registry: 'docker.io', repository: 'library/nginx', tag: '1.27' }, ['team/hub-short']],
    ['tagPattern and semver on the same repository', { registry: 'docker.io', repository: 'library/nginx', tag: '1.27.3' }, ['team/hub-full', 'team/hub-index']],
    ['semver only', { registry: 'docker.io', repository: 'library/nginx', tag: '1.26.0' }, ['team/hub-index']],
    ['a tag no selector picks', { registry: 'docker.io', repository: 'library/nginx', tag: 'alpine' }, []],
    ['digest source: the pushed digest', { registry: 'docker.io', repository: 'library/nginx', digest: D1 }, ['team/hub-api']],
    ['digest source: another digest', { registry: 'docker.io', repository: 'library/nginx', digest: D2 }, []],
    ['same path on another registry', { registry: 'quay.io', repository: 'library/nginx', tag: '1.27' }, ['team/quay-nginx']],
    ['a registry no mirror sources', { registry: 'ghcr.io', repository: 'library/nginx', tag: '1.27' }, []],
    ['host case and :443 folded; suspended and invalid selectors skipped; namespaces kept apart', { registry: 'reg.example.com', repository: 'app', tag: 'edge' }, ['team/pattern-all', 'ops/other-ns']],
    ['semver with a leading v', { registry: 'reg.example.com', repository: 'app', tag: 'v2.1.7' }, ['team/pattern-all', 'team/semver-v']],
    ['a pre-release only where the range names one', { registry: 'reg.example.com', repository: 'app', tag: '3.0.0-rc.2' }, ['team/pattern-all', 'team/semver-pre']],
    ['a pre-release outside the range names', { registry: 'reg.example.com', repository: 'app', tag: '2.1.8-rc.1' }, ['team/pattern-all']],
    ['artifact tags (cosign, referrers fallback) never, even for ".*"', { registry: 'reg.example.com', repository: 'app', tag: `sha256-${'a'.repeat(64)}.sig` }, []],
    ['the referrers fallback tag itself', { registry: 'reg.example.com', repository: 'app', tag: `sha256-${'a'.repeat(64)}` }, []],
    ['no tag: only digest sources can match', { registry: 'reg.example.com', repository: 'app', digest: D1 }, []],
    ['no registry known: nothing', { repository: 'app', tag: 'edge' }, []],
    ['exclude drops a tag the pattern picks', { registry: 'reg.example.com', repository: 'rel', tag: 'v1.0-rc.1' }, []],
    ['exclude drops a listed tag too', { registry: 'reg.example.com', repository: 'rel', tag: 'v1-rc.1' }, []],
    ['a tag no exclude names still matches', { registry: 'reg.example.com', repository: 'rel', tag: 'v1' }, ['team/no-rc', 'team/listed-excluded']],
  ];
  for (const [why, event, want] of cases) {
    it(why, () => assert.deepEqual(matchMirrors(event, MIRRORS), want));
  }

  it('a mirror whose source does not parse is skipped; each key is returned once', () => {
    const twice = [mirror('dup', { repository: 'reg.example.com/app', tags: ['x'] }), mirror('dup', { repository: 'reg.example.com/app', tags: ['x'] })];
    const index = new MirrorIndex([...twice, mirror('broken', { repository: 'Reg/App', tags: ['x'] })]);
    assert.deepEqual(index.match({ registry: 'reg.example.com', repository: 'app', tag: 'x' }), ['team/dup']);
  });

  it('agrees with selectTags for one tag, whatever the pattern, range or tag (property)', () => {
    const tag = fc.oneof(
      fc.stringMatching(/^v?[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}(-(rc|beta)\.[0-9])?$/),
      fc.stringMatching(/^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,20}$/),
      fc.constant(`sha256-${'c'.repeat(64)}.att`),
    );
    const exclude = fc.constantFrom<string[]>(['rc'], ['^v', '\\.0$'], ['('], [], ['sig$']);
    const source = fc.oneof(
      fc.record({ repository: fc.constant('r.example.com/a'), tagPattern: fc.constantFrom('.*', '^v', '^[0-9]+\\.', 'rc', '^latest$', '^(a|b)+$', '('), exclude }, { requiredKeys: ['repository', 'tagPattern'] }),
      fc.record({ repository: fc.constant('r.example.com/a'), semver: fc.constantFrom('*', '>=1.0.0', '~1.2', '^2 || ^3', '>=1.4, <2', '>=3.0.0-rc.0 <4', 'latest'), exclude }, { requiredKeys: ['repository', 'semver'] }),
      fc.record({ repository: fc.constant('r.example.com/a'), tags: fc.array(tag, { maxLength: 3 }), exclude }, { requiredKeys: ['repository', 'tags'] }),
    );
    fc.assert(
      fc.property(source, tag, (s: SourceSpec, t: string) => {
        let want: boolean;
        try {
          want = selectTags(s, [t]).includes(t);
        } catch {
          want = false;
        }
        assert.equal(selectorMatches(s, { tag: t }), want);
      }),
      { numRuns: 500 },
    );
  });

  it(`past MATCH_CACHE_MAX (${MATCH_CACHE_MAX}) compiled patterns the cache starts over and still answers right`, () => {
    const n = MATCH_CACHE_MAX + 10;
    for (let i = 0; i < n; i++) assert.equal(selectorMatches({ repository: 'r.example.com/a', tagPattern: `^t${i}$` }, { tag: `t${i}` }), true);
    // The earliest patterns were dropped with the cache and compile again.
    for (let i = 0; i < 3; i++) assert.equal(selectorMatches({ repository: 'r.example.com/a', tagPattern: `^t${i}$` }, { tag: `t${i + 1}` }), false);
  });
});
