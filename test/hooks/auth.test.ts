/**
 * The shared-secret checks: GitHub's documented HMAC test vector, where each format may carry the
 * secret (and where it may not), and equality that does not depend on the secret's length.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { authBeforeBody, checkHeaderToken, checkHubSignature, hubSignature, secretEquals } from '../../src/hooks/auth.js';
import type { WebhookFormat } from '../../src/hooks/formats.js';

const SECRET = 's3cr3t-token';
const q = (s = ''): URLSearchParams => new URLSearchParams(s);

describe('hooks: authentication', () => {
  describe("GitHub's X-Hub-Signature-256", () => {
    // docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries, "Testing the webhook payload validation".
    const VECTOR_SECRET = "It's a Secret to Everybody";
    const VECTOR_BODY = 'Hello, World!';
    const VECTOR_SIGNATURE = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';

    it('matches the documented test vector, both ways', () => {
      assert.equal(hubSignature(VECTOR_BODY, VECTOR_SECRET), VECTOR_SIGNATURE);
      assert.equal(checkHubSignature({ 'x-hub-signature-256': VECTOR_SIGNATURE }, Buffer.from(VECTOR_BODY), VECTOR_SECRET), true);
      // Upper-case hex is the same signature.
      assert.equal(checkHubSignature({ 'x-hub-signature-256': 'sha256=' + VECTOR_SIGNATURE.slice(7).toUpperCase() }, Buffer.from(VECTOR_BODY), VECTOR_SECRET), true);
    });

    it('refuses a changed body, another secret, a missing, truncated or differently prefixed signature', () => {
      const body = Buffer.from(VECTOR_BODY);
      assert.equal(checkHubSignature({ 'x-hub-signature-256': VECTOR_SIGNATURE }, Buffer.from('Hello, World?'), VECTOR_SECRET), false);
      assert.equal(checkHubSignature({ 'x-hub-signature-256': VECTOR_SIGNATURE }, body, 'another secret'), false);
      assert.equal(checkHubSignature({}, body, VECTOR_SECRET), false);
      assert.equal(checkHubSignature({ 'x-hub-signature-256': VECTOR_SIGNATURE.slice(0, -2) }, body, VECTOR_SECRET), false);
      assert.equal(checkHubSignature({ 'x-hub-signature-256': VECTOR_SIGNATURE.replace('sha256=', 'sha1=') }, body, VECTOR_SECRET), false);
      assert.equal(checkHubSignature({ 'x-hub-signature-256': VECTOR_SIGNATURE.slice(7) }, body, VECTOR_SECRET), false);
      // The legacy SHA-1 header alone is not enough.
      assert.equal(checkHubSignature({ 'x-hub-signature': 'sha1=0000' }, body, VECTOR_SECRET), false);
    });

    it('signs the exact bytes (a re-serialised body does not verify)', () => {
      const raw = readFileSync(join(import.meta.dirname, 'fixtures', 'ghcr-octokit-published.json'));
      const sig = hubSignature(raw, SECRET);
      assert.equal(checkHubSignature({ 'x-hub-signature-256': sig }, raw, SECRET), true);
      assert.equal(checkHubSignature({ 'x-hub-signature-256': sig }, Buffer.from(JSON.stringify(JSON.parse(raw.toString()))), SECRET), false);
    });
  });

  describe('header and URL secrets per format', () => {
    type Row = [WebhookFormat, IncomingHttpHeaders, string, boolean, string];
    const rows: Row[] = [
      ['distribution', { authorization: `Bearer ${SECRET}` }, '', true, 'Bearer, as the endpoint headers send it'],
      ['distribution', { authorization: `bearer   ${SECRET}` }, '', true, 'scheme case-insensitive'],
      ['distribution', { authorization: SECRET }, '', false, 'bare secret: distribution sends what it is configured with, Bearer'],
      ['distribution', {}, `token=${SECRET}`, false, 'no URL secret for a sender that can set headers'],
      ['distribution', { authorization: `Bearer ${SECRET}x` }, '', false, 'wrong secret'],
      ['distribution', { authorization: `Basic ${Buffer.from(`u:${SECRET}`).toString('base64')}` }, '', false, 'another scheme'],
      ['harbor', { authorization: SECRET }, '', true, "Harbor's Auth Header is sent verbatim"],
      ['harbor', { authorization: `Bearer ${SECRET}` }, '', true, 'or with a scheme'],
      ['gitlab', { authorization: SECRET }, '', true, "GitLab's notification secret, verbatim"],
      ['gitlab', { 'x-gitlab-token': SECRET }, '', true, 'X-Gitlab-Token'],
      ['gitlab', { 'x-gitlab-token': 'nope', authorization: `Bearer ${SECRET}` }, '', true, 'any one presented secret that matches'],
      ['harbor', { 'x-gitlab-token': SECRET }, '', false, 'X-Gitlab-Token is GitLab only'],
      ['dockerhub', {}, `token=${SECRET}`, true, 'Docker Hub can only call a URL'],
      ['quay', {}, `a=1&token=${encodeURIComponent(SECRET)}`, true, 'Quay can only call a URL'],
      ['dockerhub', {}, 'token=wrong', false, 'wrong URL secret'],
      ['dockerhub', { authorization: `Bearer ${SECRET}` }, '', true, 'a bearer header works everywhere'],
      ['quay', {}, '', false, 'nothing presented'],
      ['distribution', {}, '', false, 'nothing presented'],
    ];
    for (const [format, headers, query, ok, why] of rows) {
      it(`${format}: ${why} → ${ok ? 'accepted' : 'refused'}`, () => {
        assert.equal(checkHeaderToken(format, headers, q(query), SECRET), ok);
      });
    }

    it('ghcr is checked only by its signature, after the body; every other format before it', () => {
      assert.equal(authBeforeBody('ghcr'), false);
      for (const f of ['distribution', 'harbor', 'dockerhub', 'quay', 'gitlab'] as const) assert.equal(authBeforeBody(f), true);
    });
  });

  it('secretEquals compares any two lengths without throwing, and only equal strings are equal', () => {
    assert.equal(secretEquals(SECRET, SECRET), true);
    assert.equal(secretEquals('', SECRET), false);
    assert.equal(secretEquals(SECRET.slice(0, -1), SECRET), false);
    assert.equal(secretEquals(SECRET + SECRET, SECRET), false);
    assert.equal(secretEquals('x'.repeat(1 << 16), SECRET), false);
    assert.equal(secretEquals('é', 'e\u0301'), false); // no normalisation: bytes are the secret
  });
});
