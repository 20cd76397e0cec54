/**
 * Which source tags a mirror selects, and which target tag names each one gets (DESIGN §8).
 *
 * - `tags`: exactly the listed names, whether or not the registry lists them; `missingTags` tells the
 *   caller which ones the tag list lacks so it can report SourceNotFound instead of skipping them.
 * - `tagPattern`: RE2, unanchored (write `^…$`), like Flux and regsync.
 * - `semver`: npm ranges; a comma is read as AND (the Flux/Masterminds habit); a leading `v` on a
 *   tag is accepted and the original tag string is returned; pre-releases match only when the
 *   range names one (npm's default, `includePrerelease: false`).
 * - `latest: N`: the N highest, by semver when every candidate parses, else lexically.
 * - `digest`: one image, named by its digest; "selecting" returns that digest.
 *
 * Pattern and semver selection ignore cosign/referrers-fallback artifact tags (`sha256-<hex>` and
 * `sha256-<hex>.sig|.att|.sbom`): they are signatures and attestations of images, copied with
 * their subject when `referrers` is on, not images to mirror on their own.
 */
import { RE2JS } from 're2js';
import semver from 'semver';
import type { Range, SemVer } from 'semver';
import type { SourceSpec, TargetSpec } from './types.js';

/** Tags that name referrer artifacts rather than images (cosign and the referrers tag schema). */
export const ARTIFACT_TAG = /^sha256-[a-f0-9]{64}(?:\.(?:sig|att|sbom))?$/;

export function isArtifactTag(tag: string): boolean {
  return ARTIFACT_TAG.test(tag);
}

/** A source is single-image when it uses `digest`, or `tags` with exactly one entry. */
export function isSingleImage(source: Pick<SourceSpec, 'tags' | 'digest'>): boolean {
  return source.digest !== undefined || (source.tags !== undefined && source.tags.length === 1);
}

/** `>=1.4, <2` → `>=1.4 <2`: commas read as AND, the way Flux and Masterminds users write ranges. */
export function normalizeSemverRange(range: string): string {
  return range
    .split('||')
    .map((part) => part.replace(/\s*,\s*/g, ' ').trim())
    .join(' || ')
    .trim();
}

/**
 * The range as npm semver reads it after normalization; throws a one-line Error when it is not a
 * valid range (npm's own parser would silently read junk such as `latest` as "nothing").
 */
export function compileSemverRange(range: string): Range {
  const normalized = normalizeSemverRange(range);
  if (normalized === '' || semver.validRange(normalized) === null) {
    throw new Error(`not a valid semver range: ${JSON.stringify(range)} (e.g. ">=1.4.0 <2.0.0", "~1.4", "^2 || ^3")`);
  }
  return new semver.Range(normalized);
}

/** RE2 for `tagPattern`; throws a one-line Error carrying RE2's own description of the problem. */
export function compileTagPattern(pattern: string): RE2JS {
  try {
    return RE2JS.compile(pattern);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`not a valid RE2 regular expression: ${msg.replace(/\s*\n[\s\S]*$/, '')}`);
  }
}

/**
 * A tag read as a version: strict semver with an optional leading `v` (`v1.2.3`, `1.2.3-rc.1`).
 * `1.2`, `latest` and `=1.2.3` are not versions.
 */
export function tagVersion(tag: string): SemVer | null {
  if (!/^v?[0-9]/.test(tag)) return null;
  return semver.parse(tag, { loose: false });
}

/** Orders tags highest first: by version when all parse, else reverse-lexically. */
function sortDescending(tags: string[]): string[] {
  const versions = tags.map((t) => tagVersion(t));
  if (versions.every((v) => v !== null)) {
    const paired = tags.map((t, i) => ({ t, v: versions[i]! }));
    // Ties (`v1.2.3` and `1.2.3`) fall back to the string so the order is deterministic.
    paired.sort((a, b) => semver.rcompare(a.v, b.v) || cmp(b.t, a.t));
    return paired.map((p) => p.t);
  }
  return [...tags].sort((a, b) => cmp(b, a));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function unique(tags: string[]): string[] {
  return [...new Set(tags)];
}

/**
 * The source references to mirror, given the repository's tag list.
 * - tags: the listed names (sorted), present or not — pair with `missingTags`.
 * - tagPattern: matching tags, sorted; with `latest`, the N highest, highest first.
 * - semver: satisfying tags, highest version first; with `latest`, the first N of those.
 * - digest: `[source.digest]`.
 * Throws a one-line Error for a selector validateMirror would have refused.
 */
export function selectTags(source: SourceSpec, available: string[]): string[] {
  if (source.digest !== undefined) return [source.digest];
  if (source.tags !== undefined) return unique(source.tags).sort(cmp);
  const candidates = unique(available).filter((t) => !isArtifactTag(t));
  let selected: string[];
  if (source.tagPattern !== undefined) {
    const re = compileTagPattern(source.tagPattern);
    selected = candidates.filter((t) => re.test(t)).sort(cmp);
    if (source.latest === undefined) return selected;
  } else if (source.semver !== undefined) {
    const range = compileSemverRange(source.semver);
    selected = candidates.filter((t) => {
      const v = tagVersion(t);
      return v !== null && range.test(v);
    });
  } else {
    throw new Error('source selects nothing: set one of tags, tagPattern, semver, digest');
  }
  const ordered = sortDescending(selected);
  return source.latest === undefined ? ordered : ordered.slice(0, source.latest);
}

/** Listed `tags` the registry's tag list does not contain (empty for other selectors). */
export function missingTags(source: SourceSpec, available: string[]): string[] {
  if (source.tags === undefined) return [];
  const have = new Set(available);
  return unique(source.tags)
    .filter((t) => !have.has(t))
    .sort(cmp);
}

/**
 * Tag names a target gets for one selected source reference: the target's own `tags` (a
 * single-image source: promotion such as `1.4.2` → `stable`), else the source tag's own name.
 * A digest source has no name to reuse, so it needs target `tags`.
 */
export function targetTags(source: SourceSpec, target: TargetSpec, sourceTag: string): string[] {
  if (target.tags !== undefined && target.tags.length > 0) {
    if (!isSingleImage(source)) {
      throw new Error(`target ${target.repository}: tags are only allowed when the source is a single image (digest, or tags with exactly one entry)`);
    }
    return unique(target.tags);
  }
  if (source.digest !== undefined) {
    throw new Error(`target ${target.repository}: tags are required when the source is a digest`);
  }
  return [sourceTag];
}
