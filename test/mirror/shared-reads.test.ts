import assert from 'node:assert/strict';
import { RegistryClient } from '../../src/oci/registry.js';
import { anonymous, type Credential, type CredentialProvider } from '../../src/oci/credentials.js';
import { createReconciler, type MirrorReconciler } from '../../src/mirror/reconcile.js';
import type { ReconcileContext } from '../../src/mirror/reconciler.js';
import type { ImageMirror, ImageMirrorSpec } from '../../src/mirror/types.js';
import { LISTING_TTL_MS, SHARED_READS_MAX, SharedFlights } from '../../src/mirror/shared-reads.js';
import { isOciError } from '../../src/oci/errors.js';
import { startRegistry, type AccessLogEntry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';

const USERS = { alice: 'alice-shared-pw-4k2m', bob: 'bob-shared-pw-8w1x' };
const anonymousCtx: ReconcileContext = { credentials: async () => anonymous };

function mirror(name: string, spec: ImageMirrorSpec, namespace = 'team-a'): ImageMirror {
  return { apiVersion: 'imagemirror.dev/v1alpha1', kind: 'ImageMirror', metadata: { name, namespace, generation: 1 }, spec };
}

const tagLists = (log: AccessLogEntry[], repo: string): number => log.filter((e) => e.method === 'GET' && e.path.startsWith(`/v2/${repo}/tags/list`)).length;
const heads = (log: AccessLogEntry[], repo: string, ref: string): number => log.filter((e) => e.method === 'HEAD' && e.path === `/v2/${repo}/manifests/${ref}`).length;

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('shared source reads: one tags/list and one HEAD per source identity and window', function () {
  this.timeout(60_000);
  let open: TestRegistry;
  let locked: TestRegistry;
  let client: RegistryClient;
  let reconciler: MirrorReconciler;

  before(async () => {
    [open, locked] = await Promise.all([startRegistry(), startRegistry({ auth: 'htpasswd', users: USERS })]);
    client = new RegistryClient(open.host);
    const image = buildImage();
    await pushImage(client.repository('src/app'), image, '1.0.0');
    await pushImage(client.repository('src/app'), image, '1.1.0');
    const admin = new RegistryClient(locked.host, { credentials: { get: async () => ({ kind: 'basic', username: 'alice', password: USERS.alice }) } });
    await pushImage(admin.repository('shared/app'), buildImage(), '1.0.0');
    await admin.close();
  });
  afterEach(async () => reconciler?.close());
  after(async () => {
    await client.close();
    await Promise.all([open.stop(), locked.stop()]);
  });

  it('100 mirrors of one source reconciled concurrently make exactly 1 tags/list and 1 source HEAD per tag', async () => {
    let now = 1_000_000;
    reconciler = createReconciler({ sharedReads: { now: () => now } });
    // Once the pool holds the source's client (every reconcile after the first), all mirrors read
    // through one Repository identity; the first burst can race the pool's client creation.
    await reconciler.reconcile(mirror('warm', { source: { repository: `${open.host}/src/app`, tags: ['1.0.0'] }, targets: [{ repository: `${open.host}/dst/warm` }] }), { ...anonymousCtx, dryRun: true });
    now += LISTING_TTL_MS;
    await open.resetLog();
    const mirrors = Array.from({ length: 100 }, (_, i) =>
      mirror(`m${i}`, { source: { repository: `${open.host}/src/app`, tags: ['1.0.0', '1.1.0'] }, targets: [{ repository: `${open.host}/dst/app${i}` }] }),
    );
    const results = await Promise.all(mirrors.map((m) => reconciler.reconcile(m, { ...anonymousCtx, dryRun: true })));
    for (const r of results) assert.equal(r.outcome, 'synced', r.message);
    const log = await open.accessLog();
    // Without sharing: 100 listings and 100 HEADs per tag.
    assert.equal(tagLists(log, 'src/app'), 1);
    assert.equal(heads(log, 'src/app', '1.0.0'), 1);
    assert.equal(heads(log, 'src/app', '1.1.0'), 1);
  });

  it('mirrors reconciled one after another within the TTL share the kept listing; after LISTING_TTL_MS a new one is made', async () => {
    let now = 1_000_000;
    reconciler = createReconciler({ sharedReads: { now: () => now } });
    await open.resetLog();
    const spec = (name: string): ImageMirrorSpec => ({ source: { repository: `${open.host}/src/app`, tags: ['1.0.0'] }, targets: [{ repository: `${open.host}/ttl/${name}` }] });
    const sync = async (name: string): Promise<void> => {
      const r = await reconciler.reconcile(mirror(name, spec(name)), anonymousCtx);
      assert.equal(r.outcome, 'synced', r.message);
    };
    await sync('a');
    now += LISTING_TTL_MS - 1;
    await sync('b');
    let log = await open.accessLog();
    assert.equal(tagLists(log, 'src/app'), 1);
    assert.equal(heads(log, 'src/app', '1.0.0'), 1);
    now += 1;
    await sync('c');
    log = await open.accessLog();
    assert.equal(tagLists(log, 'src/app'), 2);
    assert.equal(heads(log, 'src/app', '1.0.0'), 2);
  });

  it('two tenants reading the same repository with different credentials never share a listing', async () => {
    let now = 1_000_000;
    reconciler = createReconciler({ sharedReads: { now: () => now } });
    const basic = (username: keyof typeof USERS): Credential => ({ kind: 'basic', username, password: USERS[username] });
    const providers: Record<string, CredentialProvider> = {
      'team-a': { get: async () => basic('alice'), identity: 'secret:team-a/creds@1' },
      'team-b': { get: async () => basic('bob'), identity: 'secret:team-b/creds@1' },
    };
    const ctx: ReconcileContext = { credentials: async (namespace) => providers[namespace]!, dryRun: true };
    const spec = (): ImageMirrorSpec => ({
      source: { repository: `${locked.host}/shared/app`, tags: ['1.0.0'], credentials: { secretName: 'creds' } },
      targets: [{ repository: `${locked.host}/out/app`, credentials: { secretName: 'creds' } }],
    });
    // Each tenant's pooled client exists (see above), and what the warm-up read has expired.
    for (const ns of ['team-a', 'team-b']) assert.equal((await reconciler.reconcile(mirror('warm', spec(), ns), ctx)).outcome, 'synced');
    now += LISTING_TTL_MS;
    await locked.resetLog();
    const results = await Promise.all([
      ...Array.from({ length: 5 }, (_, i) => reconciler.reconcile(mirror(`a${i}`, spec(), 'team-a'), ctx)),
      ...Array.from({ length: 5 }, (_, i) => reconciler.reconcile(mirror(`b${i}`, spec(), 'team-b'), ctx)),
    ]);
    for (const r of results) assert.equal(r.outcome, 'synced', r.message);
    const log = (await locked.accessLog()).filter((e) => e.status !== 401);
    assert.equal(tagLists(log, 'shared/app'), 2);
    assert.equal(heads(log, 'shared/app', '1.0.0'), 2);
  });

  it('a reconcile marked fresh (a push) reads the source again and sees a tag pushed within the TTL', async () => {
    const now = 1_000_000;
    reconciler = createReconciler({ sharedReads: { now: () => now } });
    await pushImage(client.repository('push/app'), buildImage(), '1.0.0');
    const spec = (name: string): ImageMirrorSpec => ({ source: { repository: `${open.host}/push/app`, tags: ['1.0.0', '2.0.0'] }, targets: [{ repository: `${open.host}/push-out/${name}` }] });
    const before = await reconciler.reconcile(mirror('a', spec('a')), anonymousCtx);
    assert.equal(before.reason, 'SourceNotFound');
    await pushImage(client.repository('push/app'), buildImage(), '2.0.0');
    // Within the TTL (the clock stands still) the kept listing still lacks 2.0.0 ...
    assert.equal((await reconciler.reconcile(mirror('a', spec('a')), anonymousCtx)).reason, 'SourceNotFound');
    // ... but a push-triggered reconcile asks again, and its answer serves the others.
    const pushed = await reconciler.reconcile(mirror('a', spec('a')), { ...anonymousCtx, fresh: true });
    assert.equal(pushed.outcome, 'synced', pushed.message);
    const other = await reconciler.reconcile(mirror('b', spec('b')), anonymousCtx);
    assert.equal(other.outcome, 'synced', other.message);
  });

  it('a failing listing is shared by its concurrent callers but not kept: the next caller asks again', async () => {
    const flights = new SharedFlights<string>();
    let calls = 0;
    const gate = deferred<string>();
    const load = async (): Promise<string> => {
      calls++;
      return gate.promise;
    };
    const waiting = [flights.get('k', 'tags/list of r', load), flights.get('k', 'tags/list of r', load)];
    gate.reject(new Error('registry said 503'));
    for (const w of waiting) await assert.rejects(w, /503/);
    assert.equal(calls, 1);
    assert.equal(await flights.get('k', 'tags/list of r', async () => (calls++, 'ok')), 'ok');
    assert.equal(calls, 2);
    assert.equal(flights.size, 1);
  });

  it('an aborted caller gives up alone: the others get the shared answer; the request stops only when every caller left', async () => {
    const flights = new SharedFlights<string>();
    const gate = deferred<string>();
    let seen: AbortSignal | undefined;
    const load = async (signal: AbortSignal): Promise<string> => {
      seen = signal;
      return gate.promise;
    };
    const impatient = new AbortController();
    const a = flights.get('k', 'tags/list of r', load, { signal: impatient.signal });
    const b = flights.get('k', 'tags/list of r', load, { signal: new AbortController().signal });
    const c = flights.get('k', 'tags/list of r', load);
    impatient.abort(new Error('deadline'));
    await assert.rejects(a, (e: unknown) => isOciError(e) && e.code === 'CANCELLED' && e.message === 'tags/list of r: cancelled');
    assert.equal(seen?.aborted, false);
    gate.resolve('tags');
    assert.deepEqual(await Promise.all([b, c]), ['tags', 'tags']);

    const lone = new AbortController();
    const gate2 = deferred<string>();
    let seen2: AbortSignal | undefined;
    const d = flights.get('j', 'tags/list of s', async (signal) => ((seen2 = signal), gate2.promise), { signal: lone.signal });
    lone.abort();
    await assert.rejects(d, (e: unknown) => isOciError(e) && e.code === 'CANCELLED');
    assert.equal(seen2?.aborted, true);
    gate2.resolve('late');
  });

  it('a slow request overtaken by a fresh one does not replace the fresher answer', async () => {
    let now = 0;
    const flights = new SharedFlights<string>({ now: () => now });
    const slow = deferred<string>();
    const old = flights.get('k', 'r', () => slow.promise);
    now = 1;
    assert.equal(await flights.get('k', 'r', async () => 'after push', { fresh: true }), 'after push');
    slow.resolve('before push');
    assert.equal(await old, 'before push');
    assert.equal(await flights.get('k', 'r', async () => 'asked again'), 'after push');
  });

  it(`keeps at most SHARED_READS_MAX (${SHARED_READS_MAX}) answers, dropping the least recently used`, async () => {
    const flights = new SharedFlights<number>({ now: () => 0 });
    let calls = 0;
    const load = async (): Promise<number> => ++calls;
    for (let i = 0; i < SHARED_READS_MAX; i++) await flights.get(`k${i}`, 'r', load);
    await flights.get('k0', 'r', load); // k0 is now the most recently used
    await flights.get('new', 'r', load); // evicts k1
    assert.equal(flights.size, SHARED_READS_MAX);
    assert.equal(calls, SHARED_READS_MAX + 1);
    await flights.get('k0', 'r', load);
    assert.equal(calls, SHARED_READS_MAX + 1);
    await flights.get('k1', 'r', load);
    assert.equal(calls, SHARED_READS_MAX + 2);
  });
});
