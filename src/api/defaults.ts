/**
 * Defaults, read through accessors so no caller spells a default itself. The values come from the
 * declaration (the CRD's `default:`, which the API server fills in; validateMirror fills in the
 * same for the file modes), so a spec that skipped validation still reads the right value.
 */
import { MIRROR } from './imagemirror.js';
import { defaultsOf, nodeAt, type Node, type ObjectNode } from './schema.js';
import type { ImageMirrorSpec, TargetSpec, VerifyKeylessRef } from './types.gen.js';
import { DEFAULT_TRUSTED_ROOT_KEY } from './vocabulary.js';

const specNode = nodeAt(MIRROR.schema, 'spec') as ObjectNode;

function declared<T extends string | boolean>(node: Node, what: string): T {
  const d = node.kind === 'string' || node.kind === 'boolean' ? node.default : undefined;
  if (d === undefined) throw new Error(`the declaration gives ${what} no default`);
  return d as T;
}

/** The defaults of spec's top-level fields: referrers, overwrite, interval, suspend. */
export const DEFAULTS: { readonly referrers: boolean; readonly overwrite: boolean; readonly interval: string; readonly suspend: boolean } = {
  referrers: declared<boolean>(specNode.properties.referrers!, 'spec.referrers'),
  overwrite: declared<boolean>(specNode.properties.overwrite!, 'spec.overwrite'),
  interval: declared<string>(specNode.properties.interval!, 'spec.interval'),
  suspend: declared<boolean>(specNode.properties.suspend!, 'spec.suspend'),
};
if (Object.keys(defaultsOf(specNode)).sort().join() !== Object.keys(DEFAULTS).sort().join()) {
  throw new Error('DEFAULTS and the declaration of spec disagree on which fields have defaults');
}

/** Copy signatures, SBOMs and attestations with each image. */
export const referrersEnabled = (spec: Pick<ImageMirrorSpec, 'referrers'>): boolean => spec.referrers ?? DEFAULTS.referrers;
/** Move a target tag that points at another image (false: TagConflict). */
export const overwriteEnabled = (spec: Pick<ImageMirrorSpec, 'overwrite'>): boolean => spec.overwrite ?? DEFAULTS.overwrite;
/** The resync period as written (a Go-style duration). */
export const intervalOf = (spec: Pick<ImageMirrorSpec, 'interval'>): string => spec.interval ?? DEFAULTS.interval;
export const suspended = (spec: Pick<ImageMirrorSpec, 'suspend'>): boolean => spec.suspend ?? DEFAULTS.suspend;
/** Delete target tags this mirror wrote that left the selection. */
export const pruneEnabled = (target: Pick<TargetSpec, 'prune'>): boolean => target.prune ?? false;
/** The Secret data key holding a keyless entry's trusted root. */
export const trustedRootKey = (k: Pick<VerifyKeylessRef, 'key'>): string => k.key ?? DEFAULT_TRUSTED_ROOT_KEY;
