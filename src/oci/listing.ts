/**
 * Paginated listings a registry serves (tags/list, referrers), read page by page under bounds: a
 * registry can answer with an endless `Link` chain or huge pages, and neither may cost unbounded
 * memory or time. Each page is parsed and checked here, away from HTTP, so the parsers can be
 * exercised on arbitrary input.
 */
import type { Descriptor } from './content.js';
import { checkReferrerList } from './descriptor.js';
import { OciError } from './errors.js';
import { parseRegistryJson } from './json.js';
import { MAX_MANIFEST_BYTES } from './media-types.js';
import { isValidTag } from './names.js';

/** Pages read for one listing (tags or referrers), following `Link: <…>; rel="next"`. */
export const MAX_LIST_PAGES = 1_000;
/** Entries (valid or not) in one tags listing, across its pages. */
export const MAX_TAGS_PER_LISTING = 100_000;
/** Response bytes of one tags listing, across its pages. */
export const MAX_TAG_LISTING_BYTES = 16 * 1024 * 1024;
/** Referrers of one subject: each is a manifest tree to copy. */
export const MAX_REFERRERS_PER_SUBJECT = 1_000;
/**
 * Response bytes of one referrers listing, across its pages: the same cap as the fallback index
 * (a manifest) that registries without the referrers API keep the same list in.
 */
export const MAX_REFERRERS_LISTING_BYTES = MAX_MANIFEST_BYTES;

export interface ListingContext {
  registry: string;
  repository: string;
  /** What is being listed, e.g. `list tags of r.example/app`. */
  what: string;
}

function protocol(ctx: ListingContext, detail: string): OciError {
  return new OciError({ code: 'PROTOCOL', message: `${ctx.what}: ${detail}`, registry: ctx.registry, repository: ctx.repository });
}

function parseJson(bytes: Uint8Array, ctx: ListingContext): unknown {
  try {
    return parseRegistryJson(bytes);
  } catch (e) {
    throw protocol(ctx, `response is ${(e as Error).message}`);
  }
}

/** Page, byte and entry accounting shared by both listings. */
abstract class Listing {
  pages = 0;
  bytes = 0;

  constructor(
    protected readonly ctx: ListingContext,
    private readonly maxBytes: number,
  ) {}

  /** Call before requesting a page: refuses the page past MAX_LIST_PAGES. */
  beginPage(): void {
    if (this.pages >= MAX_LIST_PAGES) throw protocol(this.ctx, `more than ${MAX_LIST_PAGES} pages (following Link headers)`);
    this.pages++;
  }

  /** Bytes the next page may still have; reading past it is refused with `tooLarge()`. */
  get remainingBytes(): number {
    return Math.max(0, this.maxBytes - this.bytes);
  }

  tooLarge(): OciError {
    return protocol(this.ctx, `listing is larger than ${this.maxBytes} bytes`);
  }

  protected countBytes(n: number): void {
    this.bytes += n;
    if (this.bytes > this.maxBytes) throw this.tooLarge();
  }
}

/**
 * A tags listing. Entries that are not valid tags (not strings, or outside the tag grammar, e.g.
 * `v1/../../other/app/manifests/latest`) are dropped: no client can push or pull such a name, so
 * the tag is as good as absent, and selecting it would build a request for another path. They are
 * counted in `dropped` (not reported in a mirror's status: a registry could fill it at will) and
 * still count toward MAX_TAGS_PER_LISTING.
 */
export class TagListing extends Listing {
  readonly tags: string[] = [];
  dropped = 0;
  private entries = 0;

  constructor(ctx: ListingContext) {
    super(ctx, MAX_TAG_LISTING_BYTES);
  }

  /** One page's body: `{"name": …, "tags": [...] | null}`. */
  addPage(body: Uint8Array): void {
    this.countBytes(body.length);
    const json = parseJson(body, this.ctx);
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw protocol(this.ctx, 'response is not a JSON object');
    const tags = (json as { tags?: unknown }).tags;
    // distribution answers `"tags": null` for a repository without tags.
    if (tags === undefined || tags === null) return;
    if (!Array.isArray(tags)) throw protocol(this.ctx, '"tags" is not a list');
    this.entries += tags.length;
    if (this.entries > MAX_TAGS_PER_LISTING) throw protocol(this.ctx, `more than ${MAX_TAGS_PER_LISTING} tags`);
    for (const t of tags) {
      if (isValidTag(t)) this.tags.push(t);
      else this.dropped++;
    }
  }
}

/** A referrers listing: an OCI index per page whose `manifests` are the referrers. */
export class ReferrersListing extends Listing {
  readonly descriptors: Descriptor[] = [];

  constructor(ctx: ListingContext) {
    super(ctx, MAX_REFERRERS_LISTING_BYTES);
  }

  addPage(body: Uint8Array): void {
    this.countBytes(body.length);
    const json = parseJson(body, this.ctx);
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw protocol(this.ctx, 'response is not a JSON object');
    const list = checkReferrerList((json as { manifests?: unknown }).manifests, `manifests`, {
      registry: this.ctx.registry,
      repository: this.ctx.repository,
      where: `${this.ctx.what} (page ${this.pages})`,
    });
    if (this.descriptors.length + list.length > MAX_REFERRERS_PER_SUBJECT) {
      throw protocol(this.ctx, `more than ${MAX_REFERRERS_PER_SUBJECT} referrers`);
    }
    this.descriptors.push(...list);
  }
}

/**
 * The next page of a listing from a `Link` header value (already extracted by http.nextLink), or
 * undefined at the end. The next page must be the same endpoint (same origin and path, another
 * query): a registry may page, not send the client to read or write anything else.
 */
export function nextPageUrl(next: string | undefined, current: URL, ctx: ListingContext): URL | undefined {
  if (next === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(next, current);
  } catch {
    throw protocol(ctx, 'Link header holds no valid URL');
  }
  if (url.origin !== current.origin || url.pathname !== current.pathname) {
    throw protocol(ctx, `Link header leads to another endpoint (${url.pathname.slice(0, 80)})`);
  }
  return url;
}
