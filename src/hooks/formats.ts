/**
 * Push notifications from registries, each format read into the same small shape: which registry
 * and repository changed, and the tag and digest when the sender says. Everything else in a
 * payload is ignored. A payload that is not JSON, or not the object its format defines, throws
 * WebhookPayloadError (answered 400); a single entry inside a well-formed payload that names no
 * valid repository is counted `invalid` and skipped, so one odd entry does not make the sender
 * retry the whole delivery.
 *
 * Where each format puts things, and the source read for it:
 * - distribution: the CNCF distribution notification envelope `{"events":[…]}`, one event per
 *   action; `action: "push"`, `target.{repository,tag,digest,mediaType}`, `request.host` (the Host
 *   the pushing client used). Layer pushes are events too (`target.mediaType` is the blob's type),
 *   and so are pulls unless the endpoint ignores them. Media type
 *   application/vnd.docker.distribution.events.v1+json (v2+json in distribution 3).
 *   https://github.com/distribution/distribution/blob/main/docs/content/about/notifications.md
 * - gitlab: GitLab's container registry is a distribution fork and sends the same envelope to the
 *   endpoints an administrator lists under `registry['notifications']`; GitLab's own receiver
 *   (lib/api/container_registry_event.rb) reads `events[].action`, `target.{repository,tag,digest}`.
 *   `request.host` may be absent, so a configured registry host fills in.
 *   https://docs.gitlab.com/administration/packages/container_registry/#configure-container-registry-notifications
 * - harbor: `type: "PUSH_ARTIFACT"` with `event_data.resources[{digest,tag,resource_url}]` and
 *   `event_data.repository.repo_full_name`; `resource_url` is `host/project/repo:tag` (or `@digest`
 *   for a push by digest, where `tag` then repeats the digest). The CloudEvents payload format puts
 *   the same `resources`/`repository` under `data`, with `type: "harbor.artifact.pushed"`.
 *   https://goharbor.io/docs/main/working-with-projects/project-configuration/configure-webhooks/
 * - dockerhub: `push_data.tag` and `repository.repo_name` (`namespace/name`; official images have
 *   no namespace), always Docker Hub.
 *   https://docs.docker.com/docker-hub/repos/manage/webhooks/
 * - quay: the "Repository Push" notification, `docker_url` (`quay.io/ns/repo`, or a self-hosted
 *   Quay's own host), `repository` (`ns/repo`) and `updated_tags` (a list; early Quay sent an
 *   object keyed by tag).
 *   https://docs.redhat.com/en/documentation/red_hat_quay/3.3/html/use_red_hat_quay/repository_notifications
 * - ghcr: the GitHub `registry_package` webhook (`package` for a repository webhook), `action:
 *   "published"|"updated"`, `registry_package.package_type` `CONTAINER` (older deliveries:
 *   `ecosystem: "docker"`), `package_version.package_url` (`ghcr.io/Owner/name:tag`, sometimes
 *   with a trailing `:` and no tag, owner case preserved: ghcr names are lowercase) and
 *   `package_version.container_metadata.tag.{name,digest}`.
 *   https://github.com/octokit/webhooks/blob/main/payload-examples/api.github.com/registry_package/published.docker.payload.json
 */
import { parseRegistryJson } from '../oci/json.js';
import { MediaType } from '../oci/media-types.js';
import { isValidRepository } from '../oci/names.js';
import { DOCKER_HUB, canonicalRegistry, isValidDigest, isValidTag, parseReference, parseRepository } from '../oci/reference.js';

export const WEBHOOK_FORMATS = ['distribution', 'harbor', 'dockerhub', 'quay', 'ghcr', 'gitlab'] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

export function isWebhookFormat(s: string): s is WebhookFormat {
  return (WEBHOOK_FORMATS as readonly string[]).includes(s);
}

/** One push: a repository (canonical, lowercase) and, when the sender says, the tag and digest. */
export interface PushEvent {
  /** Canonical registry host[:port]; absent when the payload names none and none is configured. */
  registry?: string;
  repository: string;
  tag?: string;
  digest?: string;
}

export interface ParsedPayload {
  /** Pushes of manifests, in payload order. */
  events: PushEvent[];
  /** Entries that are not pushes (pulls, deletes, layer uploads, pings, other event types). */
  ignored: number;
  /** Push entries naming no valid repository, or an impossible host. */
  invalid: number;
}

/** Entries (events, resources, tags) one payload may hold; more is refused whole (400). */
export const MAX_EVENTS_PER_BODY = 1000;
/** Longest string read from a payload (a host, repository, URL, tag or digest); longer is invalid. */
export const MAX_FIELD_LENGTH = 1024;

/** A payload that is not what its format defines: answered 400, nothing enqueued. */
export class WebhookPayloadError extends Error {
  readonly status = 400;
  constructor(message: string) {
    super(message);
    this.name = 'WebhookPayloadError';
  }
}

export interface ParseOptions {
  /** Registry host assumed for a format whose payload may name none (GitLab without `request.host`, Harbor without `resource_url`). */
  defaultRegistry?: string;
  /** GitHub's event name (`X-GitHub-Event`), to tell a ping or another event from a package one. */
  githubEvent?: string;
}

/** Manifest media types: a push of one of these (or with no media type given) is an image push. */
const MANIFEST_TYPES: ReadonlySet<string> = new Set<string>([
  MediaType.OciManifest,
  MediaType.OciIndex,
  MediaType.DockerManifest,
  MediaType.DockerManifestList,
  MediaType.DockerSchema1,
  MediaType.DockerSchema1Signed,
]);

/** Parses `body` as `format` defines it. Throws WebhookPayloadError only. */
export function parsePayload(format: WebhookFormat, body: Uint8Array, o: ParseOptions = {}): ParsedPayload {
  const doc = parseJson(body);
  if (!isObject(doc)) throw new WebhookPayloadError(`${format} payload must be a JSON object`);
  const out: ParsedPayload = { events: [], ignored: 0, invalid: 0 };
  switch (format) {
    case 'distribution':
    case 'gitlab':
      readEnvelope(doc, format, o, out);
      break;
    case 'harbor':
      readHarbor(doc, o, out);
      break;
    case 'dockerhub':
      readDockerHub(doc, out);
      break;
    case 'quay':
      readQuay(doc, out);
      break;
    case 'ghcr':
      readGhcr(doc, o, out);
      break;
  }
  return out;
}

function parseJson(body: Uint8Array): unknown {
  if (body.length === 0) throw new WebhookPayloadError('empty body');
  try {
    // Nesting is bounded before JSON.parse sees the bytes (it is slow on deep nesting).
    return parseRegistryJson(body);
  } catch (e) {
    throw new WebhookPayloadError(`body is ${e instanceof Error ? e.message : 'not valid JSON'}`);
  }
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(v: unknown): Obj | undefined {
  return isObject(v) ? v : undefined;
}

/** A string field within MAX_FIELD_LENGTH; `null` when present but too long or not a string. */
function str(v: unknown): string | undefined | null {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length > MAX_FIELD_LENGTH) return null;
  return v;
}

function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new WebhookPayloadError(`${what} must be an array`);
  if (v.length > MAX_EVENTS_PER_BODY) throw new WebhookPayloadError(`${what} has ${v.length} entries, at most ${MAX_EVENTS_PER_BODY} allowed`);
  return v;
}

/**
 * `registry/repository` in canonical form, or undefined when the pair is not one. A host must be
 * one on its own: `registry` alone would read as a Docker Hub path, so it is refused, not misread.
 * Without a host the path is kept as given when it is a valid repository path.
 */
function repositoryAt(registry: string | undefined, repository: string): { registry?: string; repository: string } | undefined {
  if (registry === undefined) return isValidRepository(repository) ? { repository } : undefined;
  try {
    const r = parseRepository(`${registry}/${repository}`);
    return r.registry === canonicalRegistry(registry) ? r : undefined;
  } catch {
    return undefined;
  }
}

/** A valid tag, else undefined (Harbor repeats the digest in `tag` for a push by digest). */
function validTag(v: unknown): string | undefined {
  return typeof v === 'string' && isValidTag(v) ? v : undefined;
}

function validDigest(v: unknown): string | undefined {
  return typeof v === 'string' && v.length <= MAX_FIELD_LENGTH && isValidDigest(v) ? v : undefined;
}

function push(out: ParsedPayload, where: { registry?: string; repository: string } | undefined, tag: string | undefined, digest: string | undefined): void {
  if (!where) {
    out.invalid++;
    return;
  }
  const e: PushEvent = where.registry === undefined ? { repository: where.repository } : { registry: where.registry, repository: where.repository };
  if (tag !== undefined) e.tag = tag;
  if (digest !== undefined) e.digest = digest;
  out.events.push(e);
}

function readEnvelope(doc: Obj, format: WebhookFormat, o: ParseOptions, out: ParsedPayload): void {
  for (const raw of list(doc.events, 'events')) {
    const ev = obj(raw);
    if (!ev) throw new WebhookPayloadError('events[] entries must be objects');
    if (ev.action !== 'push') {
      out.ignored++;
      continue;
    }
    const target = obj(ev.target);
    const mediaType = str(target?.mediaType);
    if (mediaType === null) {
      out.invalid++;
      continue;
    }
    if (mediaType && !MANIFEST_TYPES.has(mediaType)) {
      out.ignored++; // a layer or config blob: the manifest push that follows names the tag
      continue;
    }
    const repo = str(target?.repository);
    const host = str(obj(ev.request)?.host);
    if (!repo || host === null) {
      out.invalid++;
      continue;
    }
    const registry = host || (format === 'gitlab' ? o.defaultRegistry : undefined);
    push(out, repositoryAt(registry, repo), validTag(target?.tag), validDigest(target?.digest));
  }
}

function readHarbor(doc: Obj, o: ParseOptions, out: ParsedPayload): void {
  // Default format at the top level; CloudEvents wraps the same data under `data`.
  const cloud = typeof doc.specversion === 'string';
  const type = doc.type;
  if (type !== (cloud ? 'harbor.artifact.pushed' : 'PUSH_ARTIFACT')) {
    out.ignored++;
    return;
  }
  const data = obj(cloud ? doc.data : doc.event_data);
  if (!data) throw new WebhookPayloadError(`harbor ${String(type)} payload has no ${cloud ? 'data' : 'event_data'} object`);
  const repoInfo = obj(data.repository);
  const fullName = str(repoInfo?.repo_full_name);
  for (const raw of list(data.resources, 'resources')) {
    const res = obj(raw);
    if (!res) throw new WebhookPayloadError('resources[] entries must be objects');
    const url = str(res.resource_url);
    let where: { registry?: string; repository: string } | undefined;
    let ref: { tag?: string; digest?: string } = {};
    if (url) {
      try {
        const r = parseReference(url);
        where = { registry: r.registry, repository: r.repository };
        ref = r;
      } catch {
        where = undefined;
      }
    }
    if (!where && fullName) where = repositoryAt(o.defaultRegistry, fullName);
    push(out, where, validTag(res.tag) ?? ref.tag, validDigest(res.digest) ?? ref.digest);
  }
}

function readDockerHub(doc: Obj, out: ParsedPayload): void {
  const repo = str(obj(doc.repository)?.repo_name);
  const data = obj(doc.push_data);
  if (!repo || !data) {
    if (repo === undefined && data === undefined) throw new WebhookPayloadError('dockerhub payload has neither repository.repo_name nor push_data');
    out.invalid++;
    return;
  }
  push(out, repositoryAt(DOCKER_HUB, repo), validTag(data.tag), undefined);
}

function readQuay(doc: Obj, out: ParsedPayload): void {
  const updated = doc.updated_tags;
  if (updated === undefined) {
    out.ignored++; // a build or scan notification sent to the same URL
    return;
  }
  const dockerUrl = str(doc.docker_url);
  const repo = str(doc.repository);
  let where: { registry?: string; repository: string } | undefined;
  if (dockerUrl) {
    try {
      where = parseRepository(dockerUrl);
    } catch {
      where = undefined;
    }
  } else if (repo) {
    where = repositoryAt('quay.io', repo);
  }
  // A list of tags; early Quay sent an object of tag → image id.
  const tags = Array.isArray(updated) ? list(updated, 'updated_tags') : isObject(updated) ? list(Object.keys(updated), 'updated_tags') : undefined;
  if (!tags) throw new WebhookPayloadError('quay updated_tags must be a list of tags');
  if (tags.length === 0) {
    push(out, where, undefined, undefined);
    return;
  }
  for (const t of tags) {
    const tag = validTag(t);
    if (tag === undefined) out.invalid++;
    else push(out, where, tag, undefined);
  }
}

function readGhcr(doc: Obj, o: ParseOptions, out: ParsedPayload): void {
  const event = o.githubEvent?.toLowerCase();
  if (event !== undefined && event !== 'registry_package' && event !== 'package') {
    out.ignored++; // ping and every other GitHub event
    return;
  }
  const pkg = obj(doc.registry_package) ?? obj(doc.package);
  if (!pkg) {
    if (event === undefined && typeof doc.zen === 'string') {
      out.ignored++; // a ping delivered without its header
      return;
    }
    throw new WebhookPayloadError('ghcr payload has no registry_package object');
  }
  if (doc.action !== 'published' && doc.action !== 'updated') {
    out.ignored++;
    return;
  }
  const kind = [pkg.package_type, pkg.ecosystem].map((v) => (typeof v === 'string' ? v.toLowerCase() : ''));
  if (!kind.includes('container') && !kind.includes('docker')) {
    out.ignored++; // npm, maven, …
    return;
  }
  const version = obj(pkg.package_version);
  const meta = obj(obj(version?.container_metadata)?.tag);
  let tag = validTag(meta?.name);
  let where: { registry?: string; repository: string } | undefined;
  const url = str(version?.package_url);
  if (url) {
    try {
      // ghcr names are lowercase whatever case the owner's login has; a bare trailing ":" means no tag.
      const ref = parseReference(url.replace(/:$/, '').toLowerCase());
      where = { registry: ref.registry, repository: ref.repository };
      if (tag === undefined && ref.tag !== undefined) {
        // The tag keeps its case (tags are case-sensitive): take it from the URL as sent.
        const named = url.split('@')[0]!;
        tag = validTag(named.slice(named.lastIndexOf(':') + 1));
      }
    } catch {
      where = undefined;
    }
  }
  if (!where) {
    const owner = str(obj(pkg.owner)?.login);
    const name = str(pkg.name);
    if (owner && name) where = repositoryAt('ghcr.io', `${owner}/${name}`.toLowerCase());
  }
  push(out, where, tag, validDigest(meta?.digest));
}
