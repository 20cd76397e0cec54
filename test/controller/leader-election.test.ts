import assert from 'node:assert/strict';
import { LeaderElector, microTime, type LeaderElectionOptions } from '../../src/controller/leader-election.js';
import { Metrics } from '../../src/metrics.js';
import { startFakeApiServer, type FakeApiServer, type KObject } from '../support/fake-apiserver.js';

async function until(fn: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface LeaseObj extends KObject {
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
}

describe('LeaderElector (Lease on the fake API server)', function () {
  this.timeout(30_000);
  let fake: FakeApiServer;
  const electors: LeaderElector[] = [];

  beforeEach(async () => {
    fake = await startFakeApiServer({ namespaces: ['image-mirror'] });
  });
  afterEach(async () => {
    await Promise.all(electors.splice(0).map((e) => e.stop({ release: false })));
    await fake.stop();
  });

  // Short durations: lease 2 s, renew deadline 1.5 s, retry 200 ms.
  function elector(identity: string, extra: Partial<LeaderElectionOptions> = {}): LeaderElector & { events: string[] } {
    const events: string[] = [];
    const e = new LeaderElector({
      kubeconfig: fake.kubeconfig(),
      namespace: 'image-mirror',
      name: 'image-mirror-controller',
      identity,
      leaseDurationMs: 2000,
      renewDeadlineMs: 1500,
      retryPeriodMs: 200,
      onStartedLeading: () => events.push('started'),
      onStoppedLeading: () => events.push('stopped'),
      ...extra,
    });
    electors.push(e);
    return Object.assign(e, { events });
  }

  const lease = (): LeaseObj | undefined => fake.get<LeaseObj>('coordination.k8s.io/v1', 'leases', 'image-mirror', 'image-mirror-controller');

  it('formats MicroTime with six fractional digits', () => {
    assert.equal(microTime(new Date('2026-11-26T22:01:30.304Z')), '2026-11-26T22:01:30.304000Z');
  });

  it('two electors → exactly one leads, and the lease names it', async () => {
    const ma = new Metrics();
    const mb = new Metrics();
    const a = elector('a', { metrics: ma });
    const b = elector('b', { metrics: mb });
    a.start();
    b.start();
    await until(() => a.isLeader || b.isLeader, 5000, 'a leader');
    // Watch for a while: never both, and the leader keeps renewing.
    const firstRenew = lease()!.spec.renewTime;
    for (let i = 0; i < 60; i++) {
      assert.ok(!(a.isLeader && b.isLeader), 'two leaders at once');
      await new Promise((r) => setTimeout(r, 20));
    }
    const leader = a.isLeader ? a : b;
    const follower = a.isLeader ? b : a;
    const l = lease()!;
    assert.equal(l.spec.holderIdentity, a.isLeader ? 'a' : 'b');
    assert.equal(l.spec.leaseDurationSeconds, 2);
    assert.equal(l.spec.leaseTransitions, 0);
    assert.match(l.spec.renewTime!, /\.\d{6}Z$/);
    assert.match(l.spec.acquireTime!, /\.\d{6}Z$/);
    assert.notEqual(l.spec.renewTime, firstRenew, 'the leader renews');
    assert.deepEqual(leader.events, ['started']);
    assert.deepEqual(follower.events, []);
    assert.equal(follower.leader, leader === a ? 'a' : 'b');
    const gauge = async (m: Metrics): Promise<number> => (await m.leader.get()).values[0]?.value ?? -1;
    assert.equal(await gauge(leader === a ? ma : mb), 1);
    assert.equal(await gauge(follower === a ? ma : mb), 0);
  });

  it('stopping the leader releases the lease and the other takes over quickly', async () => {
    const a = elector('a');
    a.start();
    await until(() => a.isLeader, 5000, 'a leads');
    const b = elector('b');
    b.start();
    await new Promise((r) => setTimeout(r, 400));
    assert.ok(!b.isLeader);
    const t = Date.now();
    await a.stop();
    assert.deepEqual(a.events, ['started', 'stopped']);
    assert.ok(!a.isLeader);
    // Released: holder emptied with a 1 s lease, so b need not wait out the 2 s lease.
    await until(() => b.isLeader, 3000, 'b takes over');
    const took = Date.now() - t;
    assert.ok(took < 1800, `takeover after release took ${took} ms`);
    const l = lease()!;
    assert.equal(l.spec.holderIdentity, 'b');
    assert.equal(l.spec.leaseTransitions, 1);
  });

  it('a leader killed without release is replaced within the lease duration (plus retry)', async () => {
    const a = elector('a');
    a.start();
    await until(() => a.isLeader, 5000, 'a leads');
    const b = elector('b');
    b.start();
    await new Promise((r) => setTimeout(r, 300));
    const t = Date.now();
    await a.stop({ release: false });
    assert.equal(lease()!.spec.holderIdentity, 'a', 'a crash leaves the lease held');
    await until(() => b.isLeader, 6000, 'b takes over');
    const took = Date.now() - t;
    // b judges expiry from when it last saw the record change: ≤ lease (2 s) + retry with jitter.
    assert.ok(took >= 1200, `took over too early (${took} ms): the lease had not expired`);
    assert.ok(took < 2000 + 200 * 2.2 + 500, `takeover took ${took} ms`);
    assert.equal(lease()!.spec.leaseTransitions, 1);
  });

  it('judges expiry by when it saw the record change, not by renewTime (clock skew)', async () => {
    // A holder whose clock runs an hour behind: renewTime far in the past, but the record keeps changing.
    const skewed = (): string => microTime(new Date(Date.now() - 3600_000));
    await fake.create<LeaseObj>({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'image-mirror-controller', namespace: 'image-mirror' },
      spec: { holderIdentity: 'skewed', leaseDurationSeconds: 2, acquireTime: skewed(), renewTime: skewed(), leaseTransitions: 0 },
    });
    const renewer = setInterval(() => {
      const l = lease()!;
      l.spec.renewTime = skewed();
      fake.putObject(l);
    }, 300);
    try {
      const b = elector('b');
      b.start();
      await new Promise((r) => setTimeout(r, 2500));
      assert.ok(!b.isLeader, 'took a lease whose holder keeps renewing');
    } finally {
      clearInterval(renewer);
    }
    const b = electors[0]!;
    await until(() => b.isLeader, 5000, 'takeover once renewals stop');
  });

  it('a lost write race (409) does not make two leaders', async () => {
    // The first create loses a race; the elector must retry and only then lead.
    fake.failNext({ verb: 'create', resource: 'leases' }, 409, { times: 1 });
    const a = elector('a');
    a.start();
    await until(() => a.isLeader, 5000, 'a leads after a conflict');
    assert.ok(fake.count('create', 'leases') >= 2);
  });

  it('a leader that cannot renew within the deadline steps down and keeps campaigning', async () => {
    const a = elector('a');
    a.start();
    await until(() => a.isLeader, 5000, 'a leads');
    fake.failNext({ verb: 'update', resource: 'leases' }, 500, { times: 1000 });
    await until(() => !a.isLeader, 4000, 'a steps down');
    assert.deepEqual(a.events, ['started', 'stopped']);
    // It keeps campaigning: once writes work again (the injected failures are used up) it leads again.
    const updates = fake.count('update', 'leases');
    await until(() => fake.count('update', 'leases') > updates + 2, 4000, 'renewed campaigning');
  });
});
