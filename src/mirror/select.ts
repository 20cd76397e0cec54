/**
 * Which source tags a mirror selects, and which target tag names each one gets.
 *
 * - `tags`: exactly the listed names, whether or not the registry lists them; `missingTags` tells the
 *   caller which ones the tag list lacks so it can report SourceNotFound instead of skipping them.
 * - `tagPattern`: RE2, unanchored (write `^…$`), like Flux and regsync.
 * - `semver`: npm ranges; a comma is read as AND (the Flux/Masterminds habit); a leading `v` on a
 *   tag is accepted and the original tag string is returned; pre-releases match only when the
 *   range names one (npm's default, `includePrerelease: false`).
 * - `exclude`: RE2 patterns, unanchored; a tag matching any of them is dropped after the selector
 *   (tags, tagPattern or semver) and before `latest`, so `latest: 3` with `exclude: ["-rc"]` is the
 *   three highest releases, not the releases among the three highest tags.
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

/** Longest `semver` range accepted; checked before anything parses it. */
export const SEMVER_MAX_LENGTH = 256;
/** Most `||` alternatives in one `semver` range. */
export const SEMVER_MAX_ALTERNATIVES = 16;
/**
 * Most comparators in one `semver` range, counted as written across all alternatives: `>=1.4 <2`
 * is two, `>= 1.4` one, `1.2 - 1.4` two. Every tag is tested against each of them.
 */
export const SEMVER_MAX_COMPARATORS = 32;
/** Longest `tagPattern` accepted; checked before RE2 compiles it. */
export const TAG_PATTERN_MAX_LENGTH = 256;
/**
 * Largest compiled `tagPattern` (RE2 program size, about one instruction per literal or class, so
 * `[0-9a-f]{7,40}` is ~80): matching costs this much per tag, and counted repetitions such as
 * `(\pL{1000})|...` reach tens of thousands within the length limit.
 */
export const TAG_PATTERN_MAX_PROGRAM = 2000;

/**
 * Characters in `s` as the API server counts `maxLength` (code points, so an astral character is
 * one); linear, and cheap when the string is short in UTF-16 units already.
 */
export function charCount(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // A high surrogate followed by a low one is a single code point.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}

/** One-line reason a string is over `max` characters, or undefined when it fits. */
export function tooLong(s: string, max: number): string | undefined {
  if (s.length <= max) return undefined;
  const n = charCount(s);
  return n > max ? `${n} characters, at most ${max} allowed` : undefined;
}

/**
 * `s` as a JSON string literal, also escaping U+2028/U+2029 (which JSON leaves raw and some log
 * viewers break lines on), so an error quoting user input stays on one line.
 */
export function quote(s: string): string {
  return JSON.stringify(s).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

const OPERATOR_ONLY = /^(?:[<>]=?|=|~>?|\^)$/;

/**
 * The words of each `||` alternative, in one left-to-right pass: whitespace and commas separate
 * words (a comma reads as AND, the Flux/Masterminds habit). Linear in the input, whatever its
 * whitespace, unlike splitting with `\s*,\s*` (quadratic on long runs of spaces).
 */
function splitRange(range: string): string[][] {
  const alternatives: string[][] = [[]];
  let start = -1;
  const flush = (end: number): void => {
    if (start >= 0) alternatives[alternatives.length - 1]!.push(range.slice(start, end));
    start = -1;
  };
  for (let i = 0; i < range.length; i++) {
    const c = range[i]!;
    if (c === '|' && range[i + 1] === '|') {
      flush(i);
      alternatives.push([]);
      i++;
    } else if (c === ',' || c === ' ' || c === '\t' || /\s/.test(c)) {
      flush(i);
    } else if (start < 0) {
      start = i;
    }
  }
  flush(range.length);
  return alternatives;
}

/** `>=1.4, <2` → `>=1.4 <2`: commas read as AND, whitespace collapsed, `||` spaced. Linear time. */
export function normalizeSemverRange(range: string): string {
  return splitRange(range)
    .map((words) => words.join(' '))
    .join(' || ')
    .trim();
}

/**
 * The range as npm semver reads it after normalization; throws a one-line Error when it is not a
 * valid range (npm's own parser would silently read junk such as `latest` as "nothing", and an
 * empty `||` alternative as "everything"). Length and comparator counts are checked before npm
 * parses anything, so the cost is linear in the input and bounded by SEMVER_MAX_LENGTH.
 */
export function compileSemverRange(range: string): Range {
  const long = tooLong(range, SEMVER_MAX_LENGTH);
  if (long !== undefined) throw new Error(`semver range too long: ${long}`);
  const invalid = `not a valid semver range: ${quote(range)}`;
  const alternatives = splitRange(range);
  if (alternatives.length > SEMVER_MAX_ALTERNATIVES) {
    throw new Error(`semver range has ${alternatives.length} || alternatives, at most ${SEMVER_MAX_ALTERNATIVES} allowed`);
  }
  let comparators = 0;
  for (const words of alternatives) {
    if (words.length === 0) {
      throw new Error(`${invalid} (${alternatives.length > 1 ? 'an empty || alternative would match every version' : 'empty'})`);
    }
    for (const w of words) if (w !== '-' && !OPERATOR_ONLY.test(w)) comparators++;
  }
  if (comparators > SEMVER_MAX_COMPARATORS) {
    throw new Error(`semver range has ${comparators} comparators, at most ${SEMVER_MAX_COMPARATORS} allowed`);
  }
  const normalized = alternatives.map((words) => words.join(' ')).join(' || ');
  try {
    return new semver.Range(normalized);
  } catch {
    throw new Error(`${invalid} (e.g. ">=1.4.0 <2.0.0", "~1.4", "^2 || ^3")`);
  }
}

/**
 * RE2 for `tagPattern`; throws a one-line Error carrying RE2's own description of the problem.
 * The length is checked before RE2 sees the pattern, and the compiled size after.
 */
export function compileTagPattern(pattern: string): RE2JS {
  const long = tooLong(pattern, TAG_PATTERN_MAX_LENGTH);
  if (long !== undefined) throw new Error(`regular expression too long: ${long}`);
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`not a valid RE2 regular expression: ${firstLine(msg)}`);
  }
  const size = re.programSize();
  if (size > TAG_PATTERN_MAX_PROGRAM) {
    throw new Error(`regular expression too complex: compiles to ${size} instructions, at most ${TAG_PATTERN_MAX_PROGRAM} allowed (use smaller counted repetitions such as {1,40})`);
  }
  return re;
}

/** The first line of `msg`, other control and line-separator characters escaped (`\\u000d`). */
function firstLine(msg: string): string {
  const nl = msg.indexOf('\n');
  const line = (nl < 0 ? msg : msg.slice(0, nl)).trimEnd();
  return line.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
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
  const kept = exclusionFilter(source);
  if (source.tags !== undefined) return unique(source.tags).filter(kept).sort(cmp);
  const candidates = unique(available).filter((t) => !isArtifactTag(t) && kept(t));
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

/**
 * Listed `tags` the registry's tag list does not contain (empty for other selectors). An excluded
 * tag is not selected, so its absence is no error.
 */
export function missingTags(source: SourceSpec, available: string[]): string[] {
  if (source.tags === undefined) return [];
  const have = new Set(available);
  const kept = exclusionFilter(source);
  return unique(source.tags)
    .filter((t) => !have.has(t) && kept(t))
    .sort(cmp);
}

/**
 * The `exclude` patterns compiled (under the tagPattern limits); throws a one-line Error naming the
 * entry that does not compile.
 */
export function compileExcludes(exclude: readonly string[]): RE2JS[] {
  return exclude.map((p, i) => {
    try {
      return compileTagPattern(p);
    } catch (e) {
      throw new Error(`exclude[${i}]: ${(e as Error).message}`);
    }
  });
}

/** Whether a tag survives `source.exclude` (always, without one). */
function exclusionFilter(source: Pick<SourceSpec, 'exclude'>): (tag: string) => boolean {
  if (source.exclude === undefined || source.exclude.length === 0) return () => true;
  const res = compileExcludes(source.exclude);
  return (tag) => !res.some((re) => re.test(tag));
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
