/**
 * End to end with a real registry: Debian's docker-registry (distribution 2.8.2) configured with
 * `notifications.endpoints` pointing at the receiver, a bearer token in the endpoint's headers.
 * Pushing a tag makes the receiver enqueue the mirror that sources it — within 2 s, awaited, no
 * sleeps — and only that mirror; the layer uploads before it are counted ignored.
 */
import assert from 'node:assert/strict';
import { webhookMetrics } from '../../src/hooks/metrics.js';
import { createWebhookReceiver } from '../../src/hooks/receiver.js';
import { startWebhookServer, type WebhookServerHandle } from '../../src/hooks/server.js';
import { Metrics } from '../../src/metrics.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { buildImage, pushImage } from '../support/images.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { EnqueueRecorder, TOKEN, mirror } from './support.js';

describe('hooks: notifications from a real registry', function () {
  this.timeout(60_000);

  let reg: TestRegistry | undefined;
  let badReg: TestRegistry | undefined;
  let server: WebhookServerHandle | undefined;
  let client: RegistryClient | undefined;
  let badClient: RegistryClient | undefined;
  const rec = new EnqueueRecorder();
  const metrics = new Metrics();
  /** Status of every answer the receiver gave, and waiters for the next 401. */
  const answers: number[] = [];
  let on401: (() => void) | undefined;
  let mirrors: ReturnType<typeof mirror>[] = [];

  before(async () => {
    const receiver = createWebhookReceiver({ tokens: () => TOKEN, mirrors: () => mirrors, enqueue: rec.enqueue, metrics });
    server = await startWebhookServer({
      addr: '127.0.0.1:0',
      receiver: {
        handle: (req, res) => {
          res.on('finish', () => {
            answers.push(res.statusCode);
            if (res.statusCode === 401) on401?.();
          });
          receiver.handle(req, res);
        },
      },
    });
    [reg, badReg] = await Promise.all([
      startRegistry({ notifications: { url: `${server.url}/hooks/distribution`, headers: { Authorization: `Bearer ${TOKEN}` } } }),
      startRegistry({ notifications: { url: `${server.url}/hooks/distribution`, headers: { Authorization: 'Bearer not-the-secret' } } }),
    ]);
    mirrors = [
      mirror('app', { repository: `${reg.host}/team/app`, semver: '>=1.2' }),
      mirror('app-edge', { repository: `${reg.host}/team/app`, tags: ['edge'] }),
      mirror('other', { repository: `${reg.host}/team/other`, tagPattern: '.*' }),
      mirror('wrong-secret', { repository: `${badReg.host}/team/app`, tagPattern: '.*' }),
    ];
    client = new RegistryClient(reg.host);
    badClient = new RegistryClient(badReg.host);
  });

  after(async () => {
    await Promise.all([client?.close(), badClient?.close()]);
    await Promise.all([reg?.stop(), badReg?.stop()]);
    await server?.close();
  });

  it('a tag push enqueues the mirror that selects it within 2 s, and no other', async () => {
    const t0 = performance.now();
    await pushImage(client!.repository('team/app'), buildImage(), '1.2.3');
    await rec.waitFor('team/app', 1, 2000);
    const took = rec.calls.find((c) => c.key === 'team/app')!.at - t0;
    assert.ok(took < 2000, `enqueued ${took.toFixed(0)} ms after the push began`);
    assert.match(rec.calls[0]!.why, new RegExp(`^distribution notification: push to ${reg!.host.replace(/\./g, '\\.')}/team/app:1\\.2\\.3$`));
    // The same image under a tag only `app-edge` selects.
    await pushImage(client!.repository('team/app'), buildImage(), 'edge');
    await rec.waitFor('team/app-edge', 1, 2000);
    assert.deepEqual(
      rec.calls.map((c) => c.key),
      ['team/app', 'team/app-edge'],
    );
    // Layer and config uploads, and the manifest pushes by digest that precede each tag, are
    // events too: ignored (blobs) or unmatched (no tag), never enqueued.
    const ignored = (await webhookMetrics(metrics).events.get()).values.find((v) => v.labels.result === 'ignored')?.value ?? 0;
    assert.ok(ignored >= 4, `ignored ${ignored}`);
  });

  it('a registry sending the wrong secret is refused (401) and enqueues nothing', async () => {
    const refused = new Promise<void>((resolve) => (on401 = resolve));
    await pushImage(badClient!.repository('team/app'), buildImage(), '9.9.9');
    await Promise.race([refused, new Promise((_, reject) => setTimeout(() => reject(new Error('no 401 within 5 s')), 5000).unref())]);
    // A push on the good registry afterwards: its enqueue comes after anything the 401s could have caused.
    await pushImage(client!.repository('team/other'), buildImage(), 'x1');
    await rec.waitFor('team/other', 1, 2000);
    assert.equal(rec.count('team/wrong-secret'), 0);
    assert.ok(answers.every((s) => s === 202 || s === 401), `answers: ${[...new Set(answers)].join(', ')}`);
  });
});
