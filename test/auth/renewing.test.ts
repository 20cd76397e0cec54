/**
 * The renewing credential cache every cloud provider shares, on an injected clock: when it renews
 * (the margin before expiry, half-life for short tokens, the reuse floor), that concurrent
 * callers share one renewal, that a failed renewal falls back to a still-valid credential, the
 * renewal timeout, and one-line, token-free errors.
 */
import assert from 'node:assert/strict';
import { CLOUD_PROVIDERS, isCloudProvider } from '../../src/auth/index.js';
import {
  CLOUD_REQUEST_TIMEOUT_MS,
  MAX_ERROR_LINE,
  MIN_REUSE_MS,
  RENEW_BEFORE_EXPIRY_MS,
  RenewingCredential,
  cloudError,
  errorLine,
  registryCredentials,
  type Expiring,
} from '../../src/auth/provider.js';
import type { Credential } from '../../src/oci/credentials.js';
import { OciError } from '../../src/oci/errors.js';
import { TestClock } from '../support/cloud/tokens.js';

const HOUR = 3600_000;

/** A fetch that hands out `v1`, `v2`, … with the given lifetimes (the last one repeats). */
function counter(lifetimes: number[]): ((signal: AbortSignal) => Promise<Expiring<string>>) & { calls: number } {
  const f = async (): Promise<Expiring<string>> => {
    f.calls++;
    return { value: `v${f.calls}`, lifetimeMs: lifetimes[Math.min(f.calls, lifetimes.length) - 1]! };
  };
  f.calls = 0;
  return f;
}

describe('auth: renewing credential', () => {
  it(`reuses a 12 h credential until RENEW_BEFORE_EXPIRY_MS (${RENEW_BEFORE_EXPIRY_MS / 60000} min) before it expires, then renews it`, async () => {
    const clock = new TestClock();
    const f = counter([12 * HOUR]);
    const c = new RenewingCredential(f, { now: clock.now });
    assert.equal(await c.get(), 'v1');
    clock.advance(12 * HOUR - RENEW_BEFORE_EXPIRY_MS - 1);
    assert.equal(await c.get(), 'v1');
    assert.equal(f.calls, 1);
    clock.advance(1);
    assert.equal(await c.get(), 'v2', 'renewed at the margin, while the old one is still valid');
    assert.equal(f.calls, 2);
  });

  it('renews a credential shorter-lived than twice the margin at half its life', async () => {
    const clock = new TestClock();
    const f = counter([4 * 60_000]);
    const c = new RenewingCredential(f, { now: clock.now });
    await c.get();
    clock.advance(2 * 60_000 - 1);
    assert.equal(await c.get(), 'v1');
    clock.advance(1);
    assert.equal(await c.get(), 'v2');
  });

  it(`reuses a credential that claims to be expired already for MIN_REUSE_MS (${MIN_REUSE_MS / 1000} s), not once per request`, async () => {
    const clock = new TestClock();
    const f = counter([-5000]);
    const c = new RenewingCredential(f, { now: clock.now });
    for (let i = 0; i < 5; i++) assert.equal(await c.get(), 'v1');
    clock.advance(MIN_REUSE_MS - 1);
    assert.equal(await c.get(), 'v1');
    clock.advance(1);
    assert.equal(await c.get(), 'v2');
    assert.equal(f.calls, 2);
  });

  it('single-flights a renewal: 20 concurrent callers, one fetch', async () => {
    const clock = new TestClock();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    const c = new RenewingCredential(
      async () => {
        calls++;
        await gate;
        return { value: `v${calls}`, lifetimeMs: HOUR };
      },
      { now: clock.now },
    );
    const all = Promise.all(Array.from({ length: 20 }, () => c.get()));
    release();
    assert.deepEqual(new Set(await all), new Set(['v1']));
    assert.equal(calls, 1);
  });

  it(`a failed renewal hands out the still-valid credential and retries after MIN_REUSE_MS; once expired, the failure surfaces`, async () => {
    const clock = new TestClock();
    let fail = false;
    let calls = 0;
    const c = new RenewingCredential(
      async () => {
        calls++;
        if (fail) throw new Error('metadata server unavailable');
        return { value: `v${calls}`, lifetimeMs: HOUR };
      },
      { now: clock.now },
    );
    await c.get();
    fail = true;
    clock.advance(HOUR - RENEW_BEFORE_EXPIRY_MS);
    assert.equal(await c.get(), 'v1');
    assert.equal(calls, 2);
    clock.advance(MIN_REUSE_MS - 1);
    assert.equal(await c.get(), 'v1');
    assert.equal(calls, 2, 'no second attempt before MIN_REUSE_MS');
    clock.advance(1);
    assert.equal(await c.get(), 'v1');
    assert.equal(calls, 3);
    clock.advance(RENEW_BEFORE_EXPIRY_MS);
    await assert.rejects(c.get(), /metadata server unavailable/);
    fail = false;
    assert.equal(await c.get(), 'v5');
  });

  it('gives up a renewal that hangs after timeoutMs and aborts its signal (default CLOUD_REQUEST_TIMEOUT_MS)', async () => {
    assert.equal(CLOUD_REQUEST_TIMEOUT_MS, 30_000);
    let seen: AbortSignal | undefined;
    const c = new RenewingCredential<string>(
      (signal) => {
        seen = signal;
        return new Promise(() => undefined);
      },
      { timeoutMs: 50 },
    );
    const t = Date.now();
    await assert.rejects(c.get(), /^Error: timed out after 0\.05 s$/);
    assert.ok(Date.now() - t < 5000);
    assert.equal(seen?.aborted, true);
  });

  it('errorLine: first non-empty line, JWTs and known secrets removed, capped at MAX_ERROR_LINE', () => {
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE3MDAwMDAwMDB9.c2lnbmF0dXJl';
    assert.equal(errorLine(new Error(`\n  denied for ${jwt} and s3cr3t-value\nsee https://aka.ms/troubleshoot`), ['s3cr3t-value']), 'denied for <redacted> and <redacted>');
    const long = errorLine(new Error('x'.repeat(MAX_ERROR_LINE + 50)));
    assert.equal(long.length, MAX_ERROR_LINE + 1);
    assert.ok(long.endsWith('…'));
  });

  it('cloudError: an UNAUTHORIZED OciError "<provider> credentials for <registry>: <cause>"', () => {
    const e = cloudError('gcp', 'europe-docker.pkg.dev', new Error('Could not refresh access token: 503\nstack…'));
    assert.ok(e instanceof OciError);
    assert.equal(e.code, 'UNAUTHORIZED');
    assert.equal(e.retryable, false);
    assert.equal(e.message, 'gcp credentials for europe-docker.pkg.dev: Could not refresh access token: 503');
  });

  it('a registry provider serves its own registry only and names the provider in its errors', async () => {
    const cred: Credential = { kind: 'basic', username: 'AWS', password: 'pw-123456789' };
    let fail = false;
    const r = new RenewingCredential<Credential>(async () => {
      if (fail) throw new Error('boom with pw-123456789 inside');
      return { value: cred, lifetimeMs: HOUR };
    });
    const p = registryCredentials('aws', '1.dkr.ecr.eu-west-1.amazonaws.com', 'role', r, () => ['pw-123456789']);
    assert.equal(p.identity, 'aws:1.dkr.ecr.eu-west-1.amazonaws.com:role');
    assert.deepEqual(await p.get('1.dkr.ecr.eu-west-1.amazonaws.com'), cred);
    await assert.rejects(p.get('evil.example'), (e: unknown) => e instanceof OciError && /were asked for another registry \(evil\.example\)/.test(e.message));
    fail = true;
    r.invalidate();
    await assert.rejects(p.get('1.dkr.ecr.eu-west-1.amazonaws.com'), (e: unknown) => e instanceof OciError && e.message === 'aws credentials for 1.dkr.ecr.eu-west-1.amazonaws.com: boom with <redacted> inside');
  });

  it('knows the three providers', () => {
    assert.deepEqual([...CLOUD_PROVIDERS], ['aws', 'gcp', 'azure']);
    assert.ok(isCloudProvider('gcp'));
    assert.ok(!isCloudProvider('GCP'));
    assert.ok(!isCloudProvider(undefined));
  });
});
