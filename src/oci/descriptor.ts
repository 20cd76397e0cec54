/**
 * Structural checks of what a registry serves as JSON: descriptors (in indexes, image manifests and
 * referrers lists) and the manifest fields the copy engine walks. Parsed JSON is only ever read;
 * the exact bytes are what gets copied, so these checks decide whether the bytes may be used at all.
 */
import type { Descriptor, ManifestJson } from './content.js';
import { OciError } from './errors.js';
import { parseRegistryJson } from './json.js';
import { digestProblem } from './names.js';

/** Where a structure came from, for the one-line error: `r.example/app: manifest sha256:… manifests[3]`. */
export interface StructureContext {
  registry?: string;
  repository?: string;
  /** Prefix of the message, naming registry/repository and what was read. */
  where: string;
}

function fail(ctx: StructureContext, code: 'MANIFEST_INVALID' | 'DIGEST_INVALID', detail: string): OciError {
  return new OciError({ code, message: `${ctx.where}: ${detail}`, registry: ctx.registry, repository: ctx.repository });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export interface DescriptorCheckOptions {
  /** Annotations must map strings to strings (they are written back, e.g. into a fallback index). */
  strictAnnotations?: boolean;
}

/**
 * `v` as a Descriptor, or an OciError: DIGEST_INVALID when its digest is not a sha256 digest (an
 * index entry such as `"digest": "latest"` would otherwise be fetched, and written, as a tag),
 * MANIFEST_INVALID for any other shape problem (size not a non-negative integer, mediaType not a
 * string, …).
 */
export function checkDescriptor(v: unknown, field: string, ctx: StructureContext, o: DescriptorCheckOptions = {}): Descriptor {
  if (!isObject(v)) throw fail(ctx, 'MANIFEST_INVALID', `${field} is not a descriptor object`);
  const dp = digestProblem(v['digest']);
  if (dp !== undefined) throw fail(ctx, 'DIGEST_INVALID', `${field}: ${dp}`);
  const size = v['size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw fail(ctx, 'MANIFEST_INVALID', `${field}: size is not a non-negative integer`);
  }
  if (v['mediaType'] !== undefined && typeof v['mediaType'] !== 'string') throw fail(ctx, 'MANIFEST_INVALID', `${field}: mediaType is not a string`);
  if (v['artifactType'] !== undefined && typeof v['artifactType'] !== 'string') throw fail(ctx, 'MANIFEST_INVALID', `${field}: artifactType is not a string`);
  const urls = v['urls'];
  if (urls !== undefined && (!Array.isArray(urls) || !urls.every((u) => typeof u === 'string'))) {
    throw fail(ctx, 'MANIFEST_INVALID', `${field}: urls is not a list of strings`);
  }
  const annotations = v['annotations'];
  if (annotations !== undefined && (!isObject(annotations) || (o.strictAnnotations && !Object.values(annotations).every((a) => typeof a === 'string')))) {
    throw fail(ctx, 'MANIFEST_INVALID', `${field}: annotations is not a map of strings`);
  }
  return v as unknown as Descriptor;
}

function checkList(v: unknown, field: string, ctx: StructureContext, o?: DescriptorCheckOptions): Descriptor[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw fail(ctx, 'MANIFEST_INVALID', `${field} is not a list`);
  return v.map((d, i) => checkDescriptor(d, `${field}[${i}]`, ctx, o));
}

/**
 * Checks the fields the engine reads (`mediaType`, `config`, `layers`, `blobs`, `manifests`,
 * `subject`) of a parsed manifest and returns it typed. Other fields are left as they are.
 */
export function checkManifestJson(json: unknown, ctx: StructureContext): ManifestJson {
  if (!isObject(json)) throw fail(ctx, 'MANIFEST_INVALID', 'not a JSON object');
  if (json['mediaType'] !== undefined && typeof json['mediaType'] !== 'string') throw fail(ctx, 'MANIFEST_INVALID', 'mediaType is not a string');
  if (json['config'] !== undefined) checkDescriptor(json['config'], 'config', ctx);
  if (json['subject'] !== undefined) checkDescriptor(json['subject'], 'subject', ctx);
  checkList(json['layers'], 'layers', ctx);
  // `blobs` of an artifact manifest (pre-1.1 ORAS) are layers by another name.
  checkList(json['blobs'], 'blobs', ctx);
  checkList(json['manifests'], 'manifests', ctx);
  return json as ManifestJson;
}

/** Parses manifest bytes as JSON and checks them with checkManifestJson. */
export function parseManifestBytes(bytes: Uint8Array, ctx: StructureContext): ManifestJson {
  let json: unknown;
  try {
    json = parseRegistryJson(bytes);
  } catch (e) {
    throw fail(ctx, 'MANIFEST_INVALID', (e as Error).message);
  }
  return checkManifestJson(json, ctx);
}

/** Referrer descriptors: a list of descriptors whose annotations are written back as they are. */
export function checkReferrerList(v: unknown, field: string, ctx: StructureContext): Descriptor[] {
  return checkList(v, field, ctx, { strictAnnotations: true }) ?? [];
}
