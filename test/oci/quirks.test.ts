/**
 * Big registries' documented quirks, each reproduced by a proxy in front of a real docker-registry
 * 2.8.2 (test/support/quirk-proxy.ts, fault-proxy.ts) and met by the registry client. Each test
 * names the public source of the behaviour.
 */
import assert from 'node:assert/strict';
import { Metrics } from '../../src/metrics.js';
import { OciError } from '../../src/oci/errors.js';
import { PUSH_NEEDS_REPOSITORY } from '../../src/oci/http.js';
import { MAX_QUOTA_DIGITS, MAX_REGISTRY_PAUSE_MS, QUOTA_STALE_MS, RegistryLimits, parseQuota, type RateLimitOptions } from '../../src/oci/rate-limit.js';
import { RegistryClient, type RequestEvent } from '../../src/oci/registry.js';
import { MOUNT_REPROBE_MS } from '../../src/oci/upload.js';
import { buildImage, opener, pushImage, pushReferrer, randomBlob } from '../support/images.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { ManualClock, startQuirkProxy, type QuirkProxy, type QuirkProxyOptions } from '../support/quirk-proxy.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

let seq = 0;
const uniq = (name: string): string => `${name}-${++seq}-${process.pid}`;

function isOci(code: string, match?: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof OciError, String(e));
    assert.equal(e.code, code, e.message);
    if (match) assert.match(e.message, match);
    assert.ok(!e.message.includes('\n'));
    return true;
  };
}

describe('registry quirks (client, through proxies in front of a real registry)', function () {
  let reg: TestRegistry;
  let direct: RegistryClient;
  const proxies: Array<QuirkProxy | FaultProxy> = [];
  const clients: RegistryClient[] = [];

  async function quirk(o: QuirkProxyOptions): Promise<QuirkProxy> {
    const p = await startQuirkProxy(reg, o);
    proxies.push(p);
    return p;
  }
  async function fault(o: Parameters<typeof startFaultProxy>[1]): Promise<FaultProxy> {
    const p = await startFaultProxy(reg, o);
    proxies.push(p);
    return p;
  }
  function client(host: string, o: ConstructorParameters<typeof RegistryClient>[1] = {}): RegistryClient {
    const c = new RegistryClient(host, { retry: { baseDelayMs: 5, maxDelayMs: 50 }, ...o });
    clients.push(c);
    return c;
  }

  before(async () => {
    reg = await startRegistry();
    direct = new RegistryClient(reg.host);
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const p of proxies.splice(0)) await p.stop();
  });
  after(async () => {
    await direct?.close();
    await reg?.stop();
  });

  describe('referrers endpoint that is not the referrers API', () => {
    const answers: Array<[QuirkProxyOptions['referrersAnswer'], string]> = [
      [303, 'GHCR 2026: 303 to a rate-limited github.com page (artifacthub/hub#4785)'],
      [302, 'older Artifact Registry: redirect to a login page'],
      [400, 'a 400'],
      [401, 'a 401 without a challenge (GCR may answer so, regclient#159)'],
      [403, 'a 403'],
      ['html', 'an HTML page with 200'],
    ];
    for (const [answer, what] of answers) {
      it(`${what} means "no referrers API" (undefined), not an error`, async () => {
        const name = uniq('refs/app');
        const img = await pushImage(direct.repository(name), buildImage(), 'v1');
        const p = await quirk({ referrersAnswer: answer });
        const caps: Array<[string, boolean]> = [];
        const c = client(p.host, { onCapability: (k, v) => caps.push([k, v]) });
        assert.equal(await c.repository(name).referrers(img.digest), undefined);
        assert.deepEqual(caps, [['referrers_api', false]]);
        // Learned: the endpoint is not asked again.
        assert.equal(await c.repository(name).referrers(img.digest), undefined);
        assert.equal(p.log.filter((e) => e.path.includes('/referrers/')).length, 1);
      });
    }
  });

  it('a later tag page answering 404 is an error, never a shorter list (Artifactory virtual repositories, RTFACT-18971)', async () => {
    const name = uniq('pages/app');
    const img = await pushImage(direct.repository(name), buildImage(), 't0');
    for (let i = 1; i < 5; i++) await direct.repository(name).putManifest(`t${i}`, { mediaType: img.mediaType, bytes: img.bytes });
    const p = await quirk({ brokenTagPages: { pageSize: 2 } });
    await assert.rejects(client(p.host).repository(name).listTags(), isOci('PROTOCOL', /page 2 .*404; a partial tag list is not used/));
    // The first page may still say "no such repository".
    assert.deepEqual(await client(p.host).repository(uniq('pages/none')).listTags(), []);
  });

  it('an immutable tag (ECR TAG_INVALID, aws/containers-roadmap#862) is a TAG_INVALID error with the registry\'s words', async () => {
    const name = uniq('immutable/app');
    await pushImage(direct.repository(name), buildImage(), 'v1');
    const other = await pushImage(direct.repository(name), buildImage());
    const p = await quirk({ immutableTags: true });
    await assert.rejects(
      client(p.host).repository(name).putManifest('v1', { mediaType: other.mediaType, bytes: other.bytes }),
      isOci('TAG_INVALID', /cannot be overwritten because the repository is immutable/),
    );
  });

  it('NAME_UNKNOWN on a push says the repository must exist (ECR without create-on-push, aws/containers-roadmap#853)', async () => {
    const p = await quirk({ existingRepositories: ['ecr/exists'] });
    const c = client(p.host);
    const b = randomBlob(500);
    const needs = new RegExp(PUSH_NEEDS_REPOSITORY.replace(/[()]/g, '\\$&'));
    await assert.rejects(c.repository('ecr/missing').putBlob(b.descriptor, opener(b.bytes)), isOci('NAME_UNKNOWN', needs));
    const img = buildImage();
    await assert.rejects(c.repository('ecr/missing').putManifest('v1', { mediaType: img.mediaType, bytes: img.bytes }), isOci('NAME_UNKNOWN', needs));
    // A read of a missing repository is not a push: no such advice.
    await assert.rejects(c.repository('ecr/missing').getManifest('v1'), (e: unknown) => e instanceof OciError && !e.message.includes('must exist'));
    assert.equal((await c.repository('ecr/exists').putBlob(b.descriptor, opener(b.bytes))).transfer, 'upload');
  });

  it(`mount refusals give mounting up for MOUNT_REPROBE_MS (${MOUNT_REPROBE_MS} ms), then it is tried again (ECR may start mounting, aws/containers-roadmap#2860)`, async () => {
    const src = uniq('reprobe/src');
    const blobs = Array.from({ length: 6 }, () => randomBlob(700));
    for (const b of blobs) await direct.repository(src).putBlob(b.descriptor, opener(b.bytes));
    const p = await quirk({ refuseMounts: true });
    const clock = new ManualClock();
    const c = client(p.host, { clock });
    const mounts = (): number => p.log.filter((e) => e.path.includes('mount=')).length;
    for (let i = 0; i < 3; i++) await c.repository(uniq('reprobe/dst')).putBlob(blobs[i]!.descriptor, opener(blobs[i]!.bytes), { mountFrom: [src] });
    assert.equal(c.capabilities.mount, false);
    assert.equal(mounts(), 3);
    await c.repository(uniq('reprobe/dst')).putBlob(blobs[3]!.descriptor, opener(blobs[3]!.bytes), { mountFrom: [src] });
    clock.advance(MOUNT_REPROBE_MS - 1);
    await c.repository(uniq('reprobe/dst')).putBlob(blobs[4]!.descriptor, opener(blobs[4]!.bytes), { mountFrom: [src] });
    assert.equal(mounts(), 3, 'no mount tried while given up');
    clock.advance(1);
    await c.repository(uniq('reprobe/dst')).putBlob(blobs[5]!.descriptor, opener(blobs[5]!.bytes), { mountFrom: [src] });
    assert.equal(mounts(), 4, 're-probed after MOUNT_REPROBE_MS');
  });

  it('refusals from candidates that only hold an unreferenced upload never give mounting up (ECR)', async () => {
    const p = await quirk({ refuseMounts: true });
    const c = client(p.host);
    const src = uniq('prov/src');
    for (let i = 0; i < 5; i++) {
      const b = randomBlob(300);
      await direct.repository(src).putBlob(b.descriptor, opener(b.bytes));
      await c.repository(uniq('prov/dst')).putBlob(b.descriptor, opener(b.bytes), { mountFrom: [src], provisionalMountFrom: [src] });
    }
    assert.notEqual(c.capabilities.mount, false);
    assert.equal(p.log.filter((e) => e.path.includes('mount=')).length, 5);
  });

  describe('rate limits', () => {
    it('reads Docker Hub\'s ratelimit-limit/ratelimit-remaining (docker/docs#22134) and exports them as gauges', async () => {
      assert.deepEqual(parseQuota({ 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '76;w=21600' }), { limit: 100, remaining: 76, windowMs: 21_600_000 });
      assert.equal(parseQuota({ 'ratelimit-limit': '100;w=21600' }), undefined);
      assert.equal(parseQuota({ 'ratelimit-limit': 'lots', 'ratelimit-remaining': '1' }), undefined);
      // MAX_QUOTA_DIGITS bounds what is read as a number.
      const big = '9'.repeat(MAX_QUOTA_DIGITS);
      assert.deepEqual(parseQuota({ 'ratelimit-limit': big, 'ratelimit-remaining': big }), { limit: Number(big), remaining: Number(big) });
      assert.equal(parseQuota({ 'ratelimit-limit': `${big}9`, 'ratelimit-remaining': '1' }), undefined);
      const name = uniq('hub/app');
      await pushImage(direct.repository(name), buildImage(), 'v1');
      const p = await quirk({ dockerHubQuota: { limit: 100, remaining: 40 } });
      const metrics = new Metrics();
      const events: RequestEvent[] = [];
      const c = client(p.host, {
        onRequest: (e) => {
          events.push(e);
          metrics.observeRequest(e);
        },
      });
      await c.repository(name).headManifest('v1');
      await c.repository(name).getManifest('v1');
      assert.deepEqual(events.map((e) => e.rateLimit?.remaining), [40, 39]);
      const text = await metrics.exposition();
      assert.match(text, new RegExp(`imagemirror_registry_ratelimit_remaining\\{registry="${p.host}"\\} 39\n`));
      assert.match(text, new RegExp(`imagemirror_registry_ratelimit_limit\\{registry="${p.host}"\\} 100\n`));
      assert.match(text, new RegExp(`imagemirror_registry_requests_total\\{registry="${p.host}",method="GET",code="200"\\} 1\n`));
    });

    it(`keeps the last \`floor\` pulls for others: manifest GETs are not sent, HEADs still are (regsync ratelimit.min); the figure is trusted for QUOTA_STALE_MS (${QUOTA_STALE_MS} ms)`, async () => {
      const name = uniq('floor/app');
      await pushImage(direct.repository(name), buildImage(), 'v1');
      const p = await quirk({ dockerHubQuota: { limit: 100, remaining: 7 } });
      const clock = new ManualClock();
      const c = client(p.host, { rateLimit: { floor: 5 }, clock });
      const repo = c.repository(name);
      await repo.getManifest('v1'); // 6 left
      await repo.getManifest('v1'); // 5 left
      const gets = (): number => p.log.filter((e) => e.method === 'GET' && e.path.includes('/manifests/')).length;
      await assert.rejects(repo.getManifest('v1'), isOci('TOO_MANY_REQUESTS', /reports 5 of 100 pulls left, and the last 5 are kept for others/));
      assert.equal(gets(), 2, 'the refused GET never reached the registry');
      assert.equal(p.quota!.remaining, 5);
      assert.ok(await repo.headManifest('v1'), 'a HEAD does not count against the quota');
      assert.ok(await repo.headBlob(buildImage().config.descriptor.digest) === undefined);
      clock.advance(QUOTA_STALE_MS - 1);
      await assert.rejects(repo.getManifest('v1'), isOci('TOO_MANY_REQUESTS'));
      clock.advance(1);
      // Stale: one request may go and bring a fresh figure (the registry's window may have moved).
      await repo.getManifest('v1');
      assert.equal(gets(), 3);
    });

    it('a request budget (qps) spaces requests to one registry, shared by clients given the same options', async () => {
      const name = uniq('qps/app');
      await pushImage(direct.repository(name), buildImage(), 'v1');
      const p = await quirk({});
      const clock = new ManualClock(true);
      const shared: RateLimitOptions = { qps: 4 };
      const c1 = client(p.host, { rateLimit: shared, clock });
      const c2 = client(p.host, { rateLimit: shared, clock, credentials: { get: async () => undefined } });
      const t0 = clock.now();
      for (let i = 0; i < 3; i++) {
        await c1.repository(name).headManifest('v1');
        await c2.repository(name).headManifest('v1');
      }
      // 6 requests at 4 per second: the last is sent 5 × 250 ms after the first.
      assert.equal(clock.now() - t0, 1250);
      assert.ok(clock.sleeps.every((ms) => ms <= 250), JSON.stringify(clock.sleeps));
      assert.equal(p.log.length, 6);
      // Without a budget nothing waits.
      const free = new ManualClock(true);
      const c3 = client(p.host, { clock: free });
      for (let i = 0; i < 6; i++) await c3.repository(name).headManifest('v1');
      assert.deepEqual(free.sleeps, []);
      assert.throws(() => new RegistryLimits({ qps: 0 }), RangeError);
      assert.throws(() => new RegistryLimits({ qps: Number.NaN }), RangeError);
      assert.throws(() => new RegistryLimits({ floor: -1 }), RangeError);
      assert.throws(() => new RegistryLimits({ floor: 1.5 }), RangeError);
    });

    it('a Retry-After of minutes pauses that registry (requests wait, abortably), not another one', async () => {
      const name = uniq('pause/app');
      const img = await pushImage(direct.repository(name), buildImage(), 'v1');
      const paused = await fault({ failFirst: { count: 1, status: 429, retryAfter: '300', pathIncludes: '/manifests/' } });
      const other = await fault({});
      const clock = new ManualClock();
      const a = client(paused.host, { clock });
      const b = client(other.host, { clock });
      let settled = false;
      const first = a.repository(name).headManifest('v1').finally(() => (settled = true));
      await clock.sleeping();
      // Another registry is not held up, and neither waits on a real timer.
      assert.equal((await b.repository(name).headManifest('v1'))?.digest, img.digest);
      // A second request to the paused registry waits too, and its signal ends the wait.
      const ac = new AbortController();
      const second = a.repository(name).headManifest('v1', { signal: ac.signal });
      ac.abort();
      await assert.rejects(second, isOci('CANCELLED', /cancelled while waiting/));
      clock.advance(299_000);
      assert.equal(clock.pending, 1);
      assert.equal(settled, false);
      assert.equal(paused.log.length, 1, 'nothing sent during the pause');
      clock.advance(1_000);
      assert.equal((await first)?.digest, img.digest);
      assert.deepEqual(paused.log.map((e) => e.status), [429, 200]);
    });

    it(`a Retry-After longer than MAX_REGISTRY_PAUSE_MS (${MAX_REGISTRY_PAUSE_MS} ms) fails at once, and the registry is sent nothing until it is over`, async () => {
      const name = uniq('long/app');
      const img = await pushImage(direct.repository(name), buildImage(), 'v1');
      const p = await fault({ failFirst: { count: 1, status: 429, retryAfter: String(MAX_REGISTRY_PAUSE_MS / 1000 + 1), pathIncludes: '/manifests/' } });
      const clock = new ManualClock();
      const c = client(p.host, { clock });
      await assert.rejects(c.repository(name).headManifest('v1'), isOci('TOO_MANY_REQUESTS', /asked for a pause of 15 min 1 s more \(Retry-After\), longer than the 15 min a sync waits/));
      await assert.rejects(c.repository(name).headBlob(img.config.descriptor.digest), isOci('TOO_MANY_REQUESTS'));
      assert.equal(p.log.length, 1);
      assert.equal(clock.pending, 0, 'nothing waits');
      // Once only MAX_REGISTRY_PAUSE_MS is left, requests wait it out.
      clock.advance(1_000);
      const later = c.repository(name).headManifest('v1');
      await clock.sleeping();
      clock.advance(MAX_REGISTRY_PAUSE_MS);
      assert.equal((await later)?.digest, img.digest);
    });

    it('a 429 without Retry-After is retried with backoff as before (no registry pause)', async () => {
      const name = uniq('nopause/app');
      await pushImage(direct.repository(name), buildImage(), 'v1');
      const p = await fault({ failFirst: { count: 1, status: 429, pathIncludes: '/manifests/' } });
      const clock = new ManualClock();
      const c = client(p.host, { clock });
      assert.ok(await c.repository(name).headManifest('v1'));
      assert.deepEqual(clock.sleeps, []);
    });
  });

  it('referrers pushed to a registry with the fallback tag stay readable through the fallback after a refused endpoint', async () => {
    const name = uniq('refs-fb/app');
    const img = await pushImage(direct.repository(name), buildImage(), 'v1');
    const ref = await pushReferrer(direct.repository(name), img.descriptor);
    const p = await quirk({ referrersAnswer: 303 });
    const c = client(p.host);
    assert.equal(await c.repository(name).referrers(img.digest), undefined);
    assert.equal((await c.repository(name).getManifest(ref.fallbackTag)).digest, ref.fallbackIndex.digest);
  });
});
