/**
 * Which mirrors a push concerns: those whose source is the pushed repository (canonical registry
 * and path, so `nginx`, `docker.io/library/nginx` and `index.docker.io/library/nginx` are one) and
 * whose selector would pick the pushed tag, with the same rules as selectTags: the listed `tags`,
 * an RE2 `tagPattern`, a `semver` range (artifact tags `sha256-…` never), or the `digest` itself,
 * less the tags an `exclude` pattern matches.
 * With `latest: N` a matching tag may still fall outside the N highest: the reconcile decides, a
 * spare reconcile being the cheap side of that doubt. Suspended mirrors are skipped (they do not
 * sync), and so is a mirror whose selector does not compile (its reconcile reports that).
 *
 * Compiled patterns and ranges are kept (MATCH_CACHE_MAX of each), so a burst of events costs one
 * map lookup per candidate mirror, not a compile.
 */
import type { RE2JS } from 're2js';
import type { Range } from 'semver';
import { formatRepository, parseRepository } from '../oci/reference.js';
import { compileSemverRange, compileTagPattern, isArtifactTag, tagVersion } from '../mirror/select.js';
import { mirrorKey, type ImageMirror, type SourceSpec } from '../mirror/types.js';
import type { PushEvent } from './formats.js';

/** Compiled tagPattern / semver entries kept; past this the cache starts over. */
export const MATCH_CACHE_MAX = 1024;

const patterns = new Map<string, RE2JS | null>();
const ranges = new Map<string, Range | null>();

function cached<T>(cache: Map<string, T | null>, key: string, compile: (k: string) => T): T | null {
  let v = cache.get(key);
  if (v === undefined) {
    try {
      v = compile(key);
    } catch {
      v = null; // an invalid selector selects nothing; the reconcile says why
    }
    if (cache.size >= MATCH_CACHE_MAX) cache.clear();
    cache.set(key, v);
  }
  return v;
}

/** Canonical `registry/repository` of a mirror's source, or undefined when it does not parse. */
export function sourceRepositoryKey(source: Pick<SourceSpec, 'repository'>): string | undefined {
  try {
    return formatRepository(parseRepository(source.repository));
  } catch {
    return undefined;
  }
}

/** Whether `source`'s selector picks what the event pushed (see the module comment). */
export function selectorMatches(source: SourceSpec, event: Pick<PushEvent, 'tag' | 'digest'>): boolean {
  if (source.digest !== undefined) return event.digest !== undefined && event.digest === source.digest;
  const tag = event.tag;
  if (tag === undefined) return false;
  if (excluded(source, tag)) return false;
  return tagSelected(source, tag);
}

/**
 * `source.exclude`: a tag any pattern matches is never selected, whatever selector names it. A
 * pattern that does not compile selects nothing, as for the selectors.
 */
function excluded(source: SourceSpec, tag: string): boolean {
  for (const p of source.exclude ?? []) {
    const re = cached(patterns, p, compileTagPattern);
    if (re === null || re.test(tag)) return true;
  }
  return false;
}

function tagSelected(source: SourceSpec, tag: string): boolean {
  if (source.tags !== undefined) return source.tags.includes(tag);
  if (source.latest !== undefined && source.latest < 1) return false;
  if (isArtifactTag(tag)) return false;
  if (source.tagPattern !== undefined) {
    const re = cached(patterns, source.tagPattern, compileTagPattern);
    return re !== null && re.test(tag);
  }
  if (source.semver !== undefined) {
    const range = cached(ranges, source.semver, compileSemverRange);
    const v = tagVersion(tag);
    return range !== null && v !== null && range.test(v);
  }
  return false;
}

/**
 * Mirrors grouped by canonical source repository, built once per batch of events so matching an
 * event costs a map lookup plus its candidates, not a pass over every mirror.
 */
export class MirrorIndex {
  private readonly bySource = new Map<string, ImageMirror[]>();

  constructor(mirrors: readonly ImageMirror[]) {
    for (const m of mirrors) {
      if (m.spec?.suspend === true || !m.spec?.source) continue;
      const key = sourceRepositoryKey(m.spec.source);
      if (key === undefined) continue;
      const list = this.bySource.get(key);
      if (list) list.push(m);
      else this.bySource.set(key, [m]);
    }
  }

  /** Keys (`namespace/name`) of the mirrors `event` concerns, each once, in index order. */
  match(event: PushEvent): string[] {
    if (event.registry === undefined) return [];
    const candidates = this.bySource.get(formatRepository({ registry: event.registry, repository: event.repository }));
    if (!candidates) return [];
    const keys = new Set<string>();
    for (const m of candidates) if (selectorMatches(m.spec.source, event)) keys.add(mirrorKey(m));
    return [...keys];
  }
}

/** Keys of the mirrors whose source and selector the event matches (one-off form of MirrorIndex). */
export function matchMirrors(event: PushEvent, mirrors: readonly ImageMirror[]): string[] {
  return new MirrorIndex(mirrors).match(event);
}
