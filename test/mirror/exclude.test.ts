/**
 * `source.exclude` with every selector, and with `latest`: exclusions are applied first, then the N
 * highest are taken, so excluded tags never use up one of the N places.
 */
import assert from 'node:assert/strict';
import { missingTags, selectTags } from '../../src/mirror/select.js';
import type { SourceSpec } from '../../src/mirror/types.js';

const REPO = 'localhost:5000/dev/web';
const AVAILABLE = ['1.0.0', '1.1.0', '1.2.0-rc1', '1.2.0-rc2', '1.2.0', '1.3.0-rc1', '2.0.0-rc1', 'v2.0.0-debug', 'latest', 'nightly-20261128', 'nightly-20261129'];

interface Row {
  name: string;
  source: Partial<SourceSpec>;
  expected: string[];
}

const TABLE: Row[] = [
  {
    name: 'tagPattern alone: everything matching',
    source: { tagPattern: '^v?\\d' },
    expected: ['1.0.0', '1.1.0', '1.2.0', '1.2.0-rc1', '1.2.0-rc2', '1.3.0-rc1', '2.0.0-rc1', 'v2.0.0-debug'],
  },
  {
    name: 'tagPattern + exclude: release candidates dropped',
    source: { tagPattern: '^v?\\d', exclude: ['-rc\\d+$'] },
    expected: ['1.0.0', '1.1.0', '1.2.0', 'v2.0.0-debug'],
  },
  {
    name: 'tagPattern + two excludes: any one matching drops the tag',
    source: { tagPattern: '^v?\\d', exclude: ['-rc\\d+$', 'debug'] },
    expected: ['1.0.0', '1.1.0', '1.2.0'],
  },
  {
    // Without the exclusion the two highest would be 2.0.0-rc1 and v2.0.0-debug… both excluded:
    // excluding after `latest` would leave nothing.
    name: 'tagPattern + exclude + latest 2: the two highest of what is left',
    source: { tagPattern: '^v?\\d', exclude: ['-rc\\d+$', 'debug'], latest: 2 },
    expected: ['1.2.0', '1.1.0'],
  },
  {
    name: 'tagPattern + latest 2 without exclude (for contrast)',
    source: { tagPattern: '^v?\\d', latest: 2 },
    expected: ['2.0.0-rc1', 'v2.0.0-debug'],
  },
  {
    name: 'exclude is unanchored: "rc" anywhere',
    source: { tagPattern: '^1\\.2', exclude: ['rc'] },
    expected: ['1.2.0'],
  },
  {
    name: 'exclude anchored by the user: only whole-tag matches',
    source: { tagPattern: '^1\\.2', exclude: ['^rc$'] },
    expected: ['1.2.0', '1.2.0-rc1', '1.2.0-rc2'],
  },
  {
    name: 'semver includes a named pre-release, exclude removes it again',
    source: { semver: '>=1.2.0-rc1 <1.3.0', exclude: ['-rc2$'] },
    expected: ['1.2.0', '1.2.0-rc1'],
  },
  {
    name: 'semver + exclude + latest 1',
    source: { semver: '>=1.0.0', exclude: ['^1\\.2\\.'], latest: 1 },
    expected: ['1.1.0'],
  },
  {
    name: 'lexical latest (non-semver tags) after exclusion',
    source: { tagPattern: '^nightly-', exclude: ['29$'], latest: 1 },
    expected: ['nightly-20261128'],
  },
  {
    name: 'listed tags: an excluded one is not selected',
    source: { tags: ['1.0.0', '1.2.0-rc1', 'latest'], exclude: ['-rc'] },
    expected: ['1.0.0', 'latest'],
  },
  {
    name: 'exclude matching everything selects nothing',
    source: { tagPattern: '.', exclude: ['.'], latest: 3 },
    expected: [],
  },
  {
    name: 'an empty exclude list changes nothing',
    source: { tagPattern: '^1\\.2\\.0', exclude: [] },
    expected: ['1.2.0', '1.2.0-rc1', '1.2.0-rc2'],
  },
];

describe('source.exclude', () => {
  for (const row of TABLE) {
    it(row.name, () => {
      assert.deepEqual(selectTags({ repository: REPO, ...row.source }, AVAILABLE), row.expected);
    });
  }

  it('an excluded listed tag that the registry lacks is not reported missing', () => {
    assert.deepEqual(missingTags({ repository: REPO, tags: ['1.0.0', '9.9.9-rc1', '9.9.9'], exclude: ['-rc1$'] }, AVAILABLE), ['9.9.9']);
  });

  it('a digest source ignores exclude', () => {
    const digest = `sha256:${'ab'.repeat(32)}`;
    assert.deepEqual(selectTags({ repository: REPO, digest, exclude: ['.'] }, AVAILABLE), [digest]);
  });

  it('a pattern that does not compile is a one-line error naming the entry', () => {
    assert.throws(() => selectTags({ repository: REPO, tagPattern: '.', exclude: ['ok', 'a('] }, AVAILABLE), /^Error: exclude\[1\]: not a valid RE2 regular expression: [^\n]+$/);
  });
});
