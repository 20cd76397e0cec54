/**
 * The shared secret, checked the way each sender can present it. Every comparison is constant
 * time (crypto.timingSafeEqual over fixed-size digests, so not even the secret's length leaks), and
 * nothing here returns or logs what was presented.
 *
 * How each sender carries the secret:
 * - distribution: endpoint `headers` in the registry config, `Authorization: Bearer <secret>` as its
 *   documentation shows (docs/content/about/notifications.md).
 * - gitlab: the same endpoint `headers`; GitLab's own receiver compares the whole `Authorization`
 *   value with its notification secret (lib/api/container_registry_event.rb), so the bare secret is
 *   accepted as well as `Bearer <secret>`, and `X-Gitlab-Token` (what GitLab's project webhooks send).
 * - harbor: the webhook's "Auth Header" is sent verbatim as `Authorization`
 *   (src/jobservice/job/impl/notification/webhook_job.go), so bare or `Bearer`.
 * - dockerhub, quay: neither lets the sender set a header or sign (Docker Hub's form takes a name
 *   and a URL; Quay's webhook method posts with only Content-Type, notifications/notificationmethod.py),
 *   so the secret rides in the URL: `?token=<secret>`. A bearer header is accepted too.
 * - ghcr: GitHub signs the raw body, `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`
 *   (docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries); it cannot send a custom
 *   header, so the signature is required.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { WebhookFormat } from './formats.js';

/** Formats whose secret is checked from the request line and headers, before the body is read. */
export function authBeforeBody(format: WebhookFormat): boolean {
  return format !== 'ghcr';
}

/** Formats whose sender cannot set a header: the secret may come as `?token=`. */
const QUERY_TOKEN_FORMATS: ReadonlySet<WebhookFormat> = new Set<WebhookFormat>(['dockerhub', 'quay']);
/** Formats whose sender puts the secret verbatim in Authorization (no scheme). */
const BARE_AUTHORIZATION_FORMATS: ReadonlySet<WebhookFormat> = new Set<WebhookFormat>(['harbor', 'gitlab']);

const SIGNATURE_PREFIX = 'sha256=';
const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

/** Constant-time equality of two strings of any length: their SHA-256 digests are compared. */
export function secretEquals(presented: string, secret: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(secret, 'utf8').digest();
  // Both are 32 bytes, so timingSafeEqual never throws and the time does not depend on either input.
  return timingSafeEqual(a, b);
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** `Authorization: Bearer <secret>` (scheme case-insensitive), or the bare secret where the format sends one. */
export function checkHeaderToken(format: WebhookFormat, headers: IncomingHttpHeaders, query: URLSearchParams, secret: string): boolean {
  const candidates: string[] = [];
  const auth = header(headers, 'authorization');
  if (auth !== undefined) {
    const m = /^Bearer[ \t]+(.*)$/i.exec(auth);
    if (m) candidates.push(m[1]!.trim());
    else if (BARE_AUTHORIZATION_FORMATS.has(format)) candidates.push(auth.trim());
  }
  if (format === 'gitlab') {
    const t = header(headers, 'x-gitlab-token');
    if (t !== undefined) candidates.push(t);
  }
  if (QUERY_TOKEN_FORMATS.has(format)) {
    const t = query.get('token');
    if (t !== null) candidates.push(t);
  }
  // Every candidate is compared (no early exit), so timing says nothing about which one matched.
  let ok = false;
  for (const c of candidates) ok = secretEquals(c, secret) || ok;
  return ok;
}

/** GitHub's `X-Hub-Signature-256` over the exact bytes received. */
export function checkHubSignature(headers: IncomingHttpHeaders, body: Uint8Array, secret: string): boolean {
  const sig = header(headers, 'x-hub-signature-256');
  if (sig === undefined || !sig.startsWith(SIGNATURE_PREFIX)) return false;
  const hex = sig.slice(SIGNATURE_PREFIX.length);
  if (!SHA256_HEX.test(hex)) return false;
  const expected = createHmac('sha256', secret).update(body).digest();
  return timingSafeEqual(Buffer.from(hex, 'hex'), expected);
}

/** The `X-Hub-Signature-256` value GitHub would send for `body` (tests and replaying a delivery). */
export function hubSignature(body: Uint8Array | string, secret: string): string {
  return SIGNATURE_PREFIX + createHmac('sha256', secret).update(body).digest('hex');
}
