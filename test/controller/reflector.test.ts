import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { LAST_APPLIED_ANNOTATION, LIST_PAGE_SIZE, Reflector, stripBookkeeping } from '../../src/controller/reflector.js';
import type { KubeObject } from '../../src/controller/kube-http.js';
import { startFakeApiServer, type FakeApiServer, type KObject } from '../support/fake-apiserver.js';
import { crdPath, policyCrdPath } from '../support/fake-apiserver/sample-crd.js';

const API = 'imagemirror.dev/v1alpha1';
const PATH = '/apis/imagemirror.dev/v1alpha1/namespaces/team-a/imagemirrors';

function mirror(name: string, tag = '1.0'): KObject & { spec: unknown } {
  return {
    apiVersion: API,
    kind: 'ImageMirror',
    metadata: { name, namespace: 'team-a' },
    spec: { source: { repository: 'localhost:5000/src', tags: [tag] }, targets: [{ repository: 'localhost:5000/dst' }] },
  };
}

/** Poll a condition the fake cannot signal (client-side state such as "watch connected"). */
async function until(fn: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Seen {
  adds: string[];
  updates: string[];
  deletes: string[];
}

describe('Reflector (against the fake API server)', function () {
  this.timeout(20_000);
  let fake: FakeApiServer;
  let reflector: Reflector<KubeObject> | undefined;
  let seen: Seen;

  beforeEach(async () => {
    fake = await startFakeApiServer({ crds: [await crdPath()], namespaces: ['team-a', 'team-b'] });
    seen = { adds: [], updates: [], deletes: [] };
  });
  afterEach(async () => {
    await reflector?.stop();
    reflector = undefined;
    await fake.stop();
  });

  function start(extra: Partial<ConstructorParameters<typeof Reflector<KubeObject>>[0]> = {}): Reflector<KubeObject> {
    reflector = new Reflector<KubeObject>({
      name: 'imagemirrors in team-a',
      kubeconfig: fake.kubeconfig(),
      path: PATH,
      timeoutSeconds: 30,
      backoff: { baseMs: 50, maxMs: 400 },
      handlers: {
        add: (o) => seen.adds.push(o.metadata!.name!),
        update: (o) => seen.updates.push(o.metadata!.name!),
        delete: (o) => seen.deletes.push(o.metadata!.name!),
      },
      ...extra,
    });
    reflector.start();
    return reflector;
  }

  it('lists, marks itself synced, then delivers add/update/delete from the watch', async () => {
    await fake.create(mirror('a'));
    await fake.create(mirror('b'));
    const r = start();
    await r.waitForSync();
    assert.ok(r.synced);
    assert.deepEqual(seen.adds.sort(), ['a', 'b']);
    await until(() => r.connected, 5000, 'watch connected');
    const watchReq = fake.requests.find((q) => q.verb === 'watch' && q.resource === 'imagemirrors');
    assert.ok(watchReq);
    const q = new URLSearchParams(watchReq.query);
    assert.equal(q.get('allowWatchBookmarks'), 'true');
    assert.equal(q.get('timeoutSeconds'), '30');
    assert.ok(q.get('resourceVersion'), 'the watch starts from the list resourceVersion');

    await fake.create(mirror('c'));
    const b = fake.get<KObject & { spec: { source: { tags: string[] } } }>(API, 'imagemirrors', 'team-a', 'b')!;
    b.spec.source.tags = ['2.0'];
    fake.putObject(b);
    fake.deleteObject(API, 'imagemirrors', 'team-a', 'a');
    await until(() => seen.deletes.includes('a'), 5000, 'delete of a');
    assert.deepEqual(seen.adds.sort(), ['a', 'b', 'c']);
    assert.deepEqual(seen.updates, ['b']);
    assert.deepEqual(r.list().map((o) => o.metadata!.name).sort(), ['b', 'c']);
    assert.equal(r.relists, 0);
  });

  it('with stripBookkeeping, cached objects (listed or watched) lack managedFields and the last-applied copy, other annotations kept', async () => {
    type Meta = { managedFields?: unknown; annotations?: Record<string, string> };
    const bulky = (name: string): KObject => {
      const m = mirror(name);
      const meta = m.metadata as Meta;
      meta.managedFields = [{ manager: 'kubectl-client-side-apply', operation: 'Update', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': {} } }];
      meta.annotations = { [LAST_APPLIED_ANNOTATION]: JSON.stringify(m), 'imagemirror.dev/requested-at': 'now' };
      return m;
    };
    await fake.create(bulky('listed'));
    assert.ok((fake.get<KObject>(API, 'imagemirrors', 'team-a', 'listed')!.metadata as Meta).managedFields, 'the API server keeps them');
    const r = start({ transform: stripBookkeeping });
    await r.waitForSync();
    await until(() => r.connected, 5000, 'watch connected');
    await fake.create(bulky('watched'));
    await until(() => seen.adds.includes('watched'), 5000, 'add of watched');
    for (const name of ['listed', 'watched']) {
      const meta = r.get('team-a', name)!.metadata as Meta;
      assert.equal(meta.managedFields, undefined, name);
      assert.deepEqual(meta.annotations, { 'imagemirror.dev/requested-at': 'now' }, name);
    }
  });

  it(`lists in pages of ${LIST_PAGE_SIZE} and misses nothing created between pages`, async () => {
    const n = 2 * LIST_PAGE_SIZE + 1;
    for (let i = 0; i < n; i++) await fake.create(mirror(`m${i}`));
    let pages = 0;
    const r = start({
      // Called for each listed object as its page arrives: create one more after the first page.
      transform: (o) => {
        if (++pages === LIST_PAGE_SIZE) void fake.create(mirror('late'));
        return o;
      },
    });
    await r.waitForSync();
    const lists = fake.requests.filter((q) => q.verb === 'list' && q.resource === 'imagemirrors');
    assert.equal(lists.length, 3);
    for (const q of lists) assert.equal(new URLSearchParams(q.query).get('limit'), String(LIST_PAGE_SIZE));
    assert.equal(new Set(seen.adds).size, seen.adds.length);
    // The late one is in the watch that follows the list (the pages are one snapshot).
    await until(() => seen.adds.includes('late'), 5000, 'the mirror created between pages');
    assert.equal(r.list().length, n + 1);
  });

  it('a dropped watch resumes from the last resourceVersion without missing events', async () => {
    const r = start();
    await r.waitForSync();
    await until(() => r.connected, 5000, 'watch connected');
    fake.dropWatches();
    await fake.create(mirror('while-down'));
    await until(() => seen.adds.includes('while-down'), 5000, 'add after drop');
    await fake.create(mirror('after'));
    await until(() => seen.adds.includes('after'), 5000, 'add after reconnect');
    assert.equal(r.relists, 0, 'a resumable watch needs no re-list');
    assert.equal(fake.count('list', 'imagemirrors'), 1);
  });

  for (const mode of ['http', 'event'] as const) {
    it(`410 Gone (${mode}) → re-list with synthesized add/update/delete, then no event missed`, async () => {
      fake.options.expiredWatch = mode;
      await fake.create(mirror('keep'));
      await fake.create(mirror('change'));
      await fake.create(mirror('vanish'));
      const relistReasons: string[] = [];
      const r = start({ onRelist: (why) => relistReasons.push(why) });
      await r.waitForSync();
      await until(() => r.connected, 5000, 'watch connected');
      // Changes the reflector does not see (its watch is silenced) and cannot replay afterwards:
      // history is compacted past its resourceVersion before the watch is dropped.
      fake.silenceWatches();
      const ch = fake.get<KObject & { spec: { source: { tags: string[] } } }>(API, 'imagemirrors', 'team-a', 'change')!;
      ch.spec.source.tags = ['9.9'];
      fake.putObject(ch);
      fake.deleteObject(API, 'imagemirrors', 'team-a', 'vanish');
      await fake.create(mirror('new'));
      fake.compactHistory();
      // The fake refuses even the newest resourceVersion after compaction; one more write gives
      // the re-list a resourceVersion it will watch from.
      await fake.create(mirror('after-compaction'));
      fake.dropWatches();
      await until(() => r.relists === 1 && r.connected, 5000, 're-list after 410');
      assert.deepEqual(relistReasons, ['gone']);
      assert.deepEqual(seen.adds.sort(), ['after-compaction', 'change', 'keep', 'new', 'vanish']);
      assert.deepEqual(seen.updates, ['change']);
      assert.deepEqual(seen.deletes, ['vanish']);
      await fake.create(mirror('later'));
      await until(() => seen.adds.includes('later'), 5000, 'event after re-list');
      assert.equal(fake.count('list', 'imagemirrors'), 2);
    });
  }

  it('a 410 straight after a fresh list backs off instead of spinning', async () => {
    // After compaction the fake refuses a watch even from the newest resourceVersion: every list is
    // followed by a 410 until something is written.
    const r = start({ backoff: { baseMs: 100, maxMs: 200, jitter: 0 } });
    await r.waitForSync();
    await until(() => r.connected, 5000, 'watch connected');
    fake.silenceWatches();
    fake.compactHistory();
    fake.dropWatches();
    const t = Date.now();
    await new Promise((res) => setTimeout(res, 1000));
    const lists = fake.count('list', 'imagemirrors');
    assert.ok(lists <= 1 + Math.ceil((Date.now() - t) / 100), `${lists} lists in ${Date.now() - t} ms: spinning`);
    assert.ok(lists >= 3, 'still re-listing');
    await fake.create(mirror('recovers'));
    await until(() => seen.adds.includes('recovers') && r.connected, 5000, 'recovery after a write');
  });

  it('an injected 500 on the watch → restart with backoff, then events flow again', async () => {
    const r = start({ backoff: { baseMs: 200, maxMs: 2000, jitter: 0 } });
    await r.waitForSync();
    await until(() => r.connected, 5000, 'watch connected');
    fake.failNext({ verb: 'watch', resource: 'imagemirrors' }, 500, { times: 2 });
    fake.dropWatches();
    await fake.create(mirror('x'));
    await until(() => seen.adds.includes('x'), 10_000, 'add after 500s');
    const watches = fake.requests.filter((q) => q.verb === 'watch' && q.resource === 'imagemirrors');
    const statuses = watches.map((w) => w.status);
    assert.deepEqual(statuses.slice(1, 3), [500, 500]);
    assert.ok(r.errors >= 2, `errors counted: ${r.errors}`);
    assert.equal(r.relists, 0);
    assert.ok(r.synced);
  });

  it('backs off exponentially between failing attempts', async () => {
    // Timestamps of the failing list attempts show the growing gaps (base 100 ms, no jitter).
    fake.failNext({ verb: 'list', resource: 'imagemirrors' }, 500, { times: 4 });
    const times: number[] = [];
    const r = start({
      backoff: { baseMs: 100, maxMs: 5000, jitter: 0 },
      log: { info: () => undefined, warn: () => times.push(Date.now()) },
    });
    await r.waitForSync();
    assert.equal(times.length, 4);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // Expected gaps ≈ 100, 200, 400 ms plus request time.
    assert.ok(gaps[0]! >= 90 && gaps[1]! >= 190 && gaps[2]! >= 390, `gaps ${gaps.join(',')}`);
    assert.ok(gaps[2]! > gaps[0]! * 2, `gaps grow: ${gaps.join(',')}`);
  });

  it('a silenced (half-open) watch is restarted by the staleness watchdog', async () => {
    const r = start({ staleAfterMs: 400 });
    await r.waitForSync();
    await until(() => r.connected, 5000, 'watch connected');
    fake.silenceWatches();
    await fake.create(mirror('during-silence'));
    await until(() => seen.adds.includes('during-silence'), 5000, 'add after watchdog restart');
    assert.ok(r.staleRestarts >= 1);
    assert.equal(r.relists, 0);
  });

  it('bookmarks advance the resourceVersion and keep the watchdog quiet', async () => {
    const r = start({ staleAfterMs: 600 });
    await r.waitForSync();
    await until(() => r.connected, 5000, 'watch connected');
    // Changes to another namespace move the global resourceVersion; bookmarks carry it.
    await fake.create({ ...mirror('elsewhere'), metadata: { name: 'elsewhere', namespace: 'team-b' } });
    const target = fake.resourceVersion();
    const deadline = Date.now() + 1500;
    while (Date.now() < deadline) {
      fake.sendBookmarks();
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(r.lastSyncResourceVersion, target);
    assert.equal(r.staleRestarts, 0);
    assert.equal(seen.adds.length, 0);
  });

  it('reports connection state through onConnected', async () => {
    const states: boolean[] = [];
    const r = start({ onConnected: (c) => states.push(c) });
    await r.waitForSync();
    await until(() => r.connected, 5000, 'watch connected');
    fake.dropWatches();
    await until(() => states.length >= 3, 5000, 'reconnect');
    assert.deepEqual(states.slice(0, 3), [true, false, true]);
  });

  it('absentIsEmpty: a resource type not served (404) counts as none, and is picked up once its CRD appears', async () => {
    const r = start({ name: 'imagemirrorpolicies', path: '/apis/imagemirror.dev/v1alpha1/imagemirrorpolicies', absentIsEmpty: { recheckMs: 50 } });
    await r.waitForSync();
    assert.ok(r.synced);
    assert.deepEqual(r.list(), []);
    await fake.create(parseYaml(await readFile(policyCrdPath(), 'utf8')) as KObject);
    await fake.create({ apiVersion: API, kind: 'ImageMirrorPolicy', metadata: { name: 'team-a' }, spec: { namespaces: ['team-a'], sources: ['r.io/**'], targets: ['r.io/**'] } });
    await until(() => seen.adds.includes('team-a'), 5000, 'the policy after its CRD was installed');
    await until(() => r.connected, 5000, 'watch connected');
  });

  it('without absentIsEmpty a 404 keeps the cache unsynced (an error, retried)', async () => {
    const r = start({ name: 'imagemirrorpolicies', path: '/apis/imagemirror.dev/v1alpha1/imagemirrorpolicies' });
    await until(() => r.errors >= 2, 5000, 'two failed lists');
    assert.equal(r.synced, false);
  });
});
