import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { RegistryClient } from '../../src/oci/registry.js';
import { startRun, type MirrorState, type RunHandle } from '../../src/standalone/run.js';
import { runSync } from '../../src/standalone/sync.js';
import { statusFilePath } from '../../src/standalone/status-files.js';
import { RECONCILER_CLOSE_GRACE_MS } from '../../src/standalone/bounded-close.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';

/** Polls a condition the file watcher or queue will make true; fails with `what` after timeoutMs. */
async function until<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * A TCP relay in front of the registry that holds every connection until released: a mirror whose
 * source goes through it cannot finish before the test says so.
 */
interface Gate {
  host: string;
  /** Resolves when the first connection is being held. */
  holding: Promise<void>;
  release(): void;
  close(): Promise<void>;
}

async function startGate(upstream: string): Promise<Gate> {
  const [upHost, upPort] = upstream.split(':') as [string, string];
  const waiting: Array<() => void> = [];
  const sockets = new Set<Socket>();
  let released = false;
  let onHold: () => void = () => undefined;
  const holding = new Promise<void>((resolve) => {
    onHold = resolve;
  });
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('error', () => undefined);
    const relay = (): void => {
      const up = connect(Number(upPort), upHost);
      sockets.add(up);
      up.on('error', () => client.destroy());
      client.on('close', () => up.destroy());
      up.on('close', () => client.destroy());
      client.pipe(up).pipe(client);
    };
    if (released) relay();
    else {
      waiting.push(relay);
      onHold();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    holding,
    release: () => {
      released = true;
      for (const relay of waiting.splice(0)) relay();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const readyOf = (s: MirrorState | undefined) => s?.status.conditions?.find((c) => c.type === 'Ready');

describe('spec files written by many teams: run and sync', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let client: RegistryClient;
  let root: string;
  let v1: string;
  let v2: string;
  const runs: RunHandle[] = [];

  before(async () => {
    reg = await startRegistry();
    client = new RegistryClient(reg.host);
    v1 = (await pushImage(client.repository('app/web'), buildImage(), '1.0.0')).digest;
    v2 = (await pushImage(client.repository('app/web'), buildImage(), '2.0.0')).digest;
    root = await mkdtemp(join(tmpdir(), 'hostile-specs-'));
  });
  after(async () => {
    await client.close();
    await reg.stop();
    await rm(root, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const r of runs.splice(0)) await r.stop(2000);
  });

  const mirror = (o: { name: string; namespace?: string; tag?: string; target: string; source?: string }): string => `---
apiVersion: imagemirror.dev/v1alpha1
kind: ImageMirror
metadata: {name: ${JSON.stringify(o.name)}${o.namespace ? `, namespace: ${o.namespace}` : ''}}
spec:
  source: {repository: ${o.source ?? `${reg.host}/app/web`}, tags: ["${o.tag ?? '1.0.0'}"]}
  targets: [{repository: ${reg.host}/${o.target}, tags: [current]}]
`;

  /** A fresh specs dir and status dir under a directory of its own. */
  async function dirs(name: string): Promise<{ base: string; specs: string; status: string }> {
    const base = join(root, name);
    const specs = join(base, 'specs');
    await mkdir(specs, { recursive: true });
    return { base, specs, status: join(base, 'status') };
  }

  async function start(specs: string, status: string, extra: { requirePolicy?: boolean } = {}): Promise<RunHandle> {
    const r = await startRun({ specsDir: specs, statusDir: status, debounceMs: 20, ...extra });
    runs.push(r);
    return r;
  }

  describe('run', () => {
    it('a name with ../ writes its status inside --status-dir and removing it deletes nothing outside', async () => {
      const d = await dirs('traversal');
      // Where a raw-name key (`default/x/../../../victim`) pointed: beside the test's directories.
      const victim = join(d.base, '..', 'victim.json');
      await writeFile(victim, 'precious\n');
      const spec = join(d.specs, 'evil.yaml');
      await writeFile(spec, mirror({ name: 'x/../../../victim', target: 'evil/x' }));
      const run = await start(d.specs, d.status);
      // Whatever the key, wait until its status has been written somewhere.
      const [key, state] = await until(() => Object.entries(run.statuses()).find(([, s]) => readyOf(s)?.reason === 'InvalidSpec'), 'the invalid document stalled');
      await until(async () => ((await readdir(d.status)).some((f) => f.endsWith('.json')) || (await readFile(victim, 'utf8')) !== 'precious\n' ? true : undefined), 'a status write');
      assert.equal(await readFile(victim, 'utf8'), 'precious\n');
      assert.equal(key, `${spec}#0`, 'keyed by file and document index, not by its name');
      assert.match(state.error ?? '', /metadata\.name: invalid name/);
      const written = JSON.parse(await readFile(statusFilePath(d.status, key), 'utf8')) as { key: string };
      assert.equal(written.key, key);

      await rm(spec);
      await run.reload();
      await until(() => (Object.keys(run.statuses()).length === 0 ? true : undefined), 'the document forgotten');
      await until(async () => ((await readdir(d.status)).length === 0 ? true : undefined), 'its status file removed');
      assert.equal(await readFile(victim, 'utf8'), 'precious\n');
    });

    it('a document without a name gets a status keyed by file and document index', async () => {
      const d = await dirs('unnamed');
      const spec = join(d.specs, 'u.yaml');
      await writeFile(spec, `${mirror({ name: 'fine', target: 'unnamed/fine' })}---\n# an unnamed one\nkind: ImageMirror\nspec: {}\n`);
      const run = await start(d.specs, d.status);
      const [key, state] = await until(
        () => Object.entries(run.statuses()).find(([k, s]) => k !== 'default/fine' && s.status.conditions?.some((c) => c.type === 'Stalled' && c.status === 'True')),
        'the unnamed document stalled',
      );
      await until(() => readyOf(run.statuses()['default/fine'])?.status === 'True', 'the named one synced');
      // By now the stalled one's status has long been written: it must be in the directory.
      const files = await readdir(d.status);
      const keys = await Promise.all(files.map(async (f) => (JSON.parse(await readFile(join(d.status, f), 'utf8')) as { key: string }).key));
      assert.ok(keys.includes(key), `no status file for ${key} among ${files.join(', ')}`);
      assert.equal(key, `${spec}#1`);
      assert.equal(state.source, `${spec}:10`);
      assert.equal(readyOf(state)?.reason, 'InvalidSpec');
      assert.match(readyOf(state)!.message, /metadata/);
      const written = JSON.parse(await readFile(statusFilePath(d.status, key), 'utf8')) as { key: string; source: string };
      assert.deepEqual([written.key, written.source], [key, `${spec}:10`]);
    });

    it('a mirror name defined in two files is an error naming both; neither runs until one is removed', async () => {
      const d = await dirs('duplicates');
      const a = join(d.specs, 'a.yaml');
      const b = join(d.specs, 'b.yaml');
      await writeFile(a, mirror({ name: 'dup', namespace: 'team-a', target: 'dup/from-a' }));
      await writeFile(b, `# team b\n${mirror({ name: 'dup', namespace: 'team-a', tag: '2.0.0', target: 'dup/from-b' })}`);
      const run = await start(d.specs, d.status);
      const state = await until(() => run.statuses()['team-a/dup'], 'the duplicate reported');
      assert.equal(state.error, `ImageMirror team-a/dup is defined more than once: at ${a}:2 and ${b}:3; none of them runs until the others are renamed or removed`);
      assert.equal(readyOf(state)?.status ?? 'False', 'False');
      await until(() => readyOf(run.statuses()['team-a/dup'])?.reason === 'InvalidSpec', 'status written');
      assert.equal(await client.repository('dup/from-a').headManifest('current'), undefined);
      assert.equal(await client.repository('dup/from-b').headManifest('current'), undefined);

      await rm(b);
      await run.reload();
      await until(async () => (await client.repository('dup/from-a').headManifest('current'))?.digest === v1, 'the remaining one runs');
    });

    it('removing a mirror releases its target tags: a mirror added in the same change takes them over', async () => {
      const d = await dirs('claims');
      const owner = join(d.specs, 'owner.yaml');
      await writeFile(owner, mirror({ name: 'owner', tag: '1.0.0', target: 'claimed/web' }));
      const run = await start(d.specs, d.status);
      await until(() => readyOf(run.statuses()['default/owner'])?.status === 'True', 'owner synced');
      // While the owner exists, another mirror may not write the same tag.
      const rival = join(d.specs, 'rival.yaml');
      await writeFile(rival, mirror({ name: 'rival', tag: '2.0.0', target: 'claimed/web' }));
      await run.reload();
      const refused = await until(() => {
        const r = readyOf(run.statuses()['default/rival']);
        return r && r.status !== 'Unknown' && r.reason !== 'Synced' ? r : undefined;
      }, 'rival refused');
      assert.equal(refused.reason, 'TargetClaimed');
      assert.equal((await client.repository('claimed/web').headManifest('current'))?.digest, v1);

      await rm(owner);
      await rm(rival);
      await writeFile(join(d.specs, 'newcomer.yaml'), mirror({ name: 'newcomer', tag: '2.0.0', target: 'claimed/web' }));
      await run.reload();
      await until(() => readyOf(run.statuses()['default/newcomer'])?.status === 'True', 'newcomer synced');
      assert.equal((await client.repository('claimed/web').headManifest('current'))?.digest, v2);
    });

    it('ImageMirrorPolicy documents restrict namespaces; --require-policy refuses unnamed ones; an invalid policy holds its namespaces', async () => {
      const d = await dirs('policies');
      const policies = join(d.specs, 'policies.yaml');
      await writeFile(
        policies,
        `apiVersion: imagemirror.dev/v1alpha1
kind: ImageMirrorPolicy
metadata: {name: team-a}
spec:
  namespaces: [team-a]
  sources: ["${reg.host}/app/**"]
  targets: ["${reg.host}/team-a/**"]
---
apiVersion: imagemirror.dev/v1alpha1
kind: ImageMirrorPolicy
metadata: {name: team-c}
spec:
  namespaces: [team-c]
  sources: ["not a glob"]
  targets: ["${reg.host}/team-c/**"]
`,
      );
      await writeFile(
        join(d.specs, 'mirrors.yaml'),
        mirror({ name: 'inside', namespace: 'team-a', target: 'team-a/web' }) +
          mirror({ name: 'escape', namespace: 'team-a', target: 'team-b/web' }) +
          mirror({ name: 'nobody', namespace: 'team-b', target: 'team-b/web' }) +
          mirror({ name: 'held', namespace: 'team-c', target: 'team-c/web' }),
      );
      const run = await start(d.specs, d.status, { requirePolicy: true });
      await until(() => readyOf(run.statuses()['team-a/inside'])?.status === 'True', 'team-a/inside synced');
      const escape = await until(() => (readyOf(run.statuses()['team-a/escape'])?.reason === 'Forbidden' ? readyOf(run.statuses()['team-a/escape']) : undefined), 'escape forbidden');
      assert.match(escape!.message, /team-b\/web matches none of ImageMirrorPolicy team-a spec\.targets/);
      const nobody = await until(() => (readyOf(run.statuses()['team-b/nobody'])?.reason === 'Forbidden' ? readyOf(run.statuses()['team-b/nobody']) : undefined), 'nobody forbidden');
      assert.match(nobody!.message, /named by no ImageMirrorPolicy/);
      const held = await until(() => run.statuses()['team-c/held'], 'held reported');
      assert.equal(held.error, `not run: ImageMirrorPolicy team-c at ${policies}:9 is invalid; fix the policy first`);
      assert.equal(await client.repository('team-b/web').headManifest('current'), undefined);
      assert.equal(await client.repository('team-c/web').headManifest('current'), undefined);
    });
  });

  describe('sync', () => {
    const io = () => {
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let out = '';
      let err = '';
      stdout.on('data', (b: Buffer) => (out += b.toString()));
      stderr.on('data', (b: Buffer) => (err += b.toString()));
      return { stdout, stderr, out: () => out, err: () => err };
    };

    it('a mirror name defined in two files is an error naming both files, and neither runs', async () => {
      const d = await dirs('sync-duplicates');
      const one = join(d.specs, 'one.yaml');
      const two = join(d.specs, 'two.yaml');
      await writeFile(one, mirror({ name: 'same', namespace: 'team-a', target: 'same/one' }));
      await writeFile(two, mirror({ name: 'same', namespace: 'team-a', target: 'same/two' }));
      const o = io();
      const r = await runSync({ files: [d.specs], output: 'json', dockerConfig: '/nonexistent', stdout: o.stdout, stderr: o.stderr });
      assert.equal(r.exitCode, 1);
      assert.equal(r.mirrors.length, 1);
      assert.deepEqual([r.mirrors[0]!.namespace, r.mirrors[0]!.name, r.mirrors[0]!.reason], ['team-a', 'same', 'InvalidSpec']);
      assert.ok(r.mirrors[0]!.message.includes(`${one}:2 and ${two}:2`), r.mirrors[0]!.message);
      assert.equal(await client.repository('same/one').headManifest('current'), undefined);
      assert.equal(await client.repository('same/two').headManifest('current'), undefined);
    });

    async function withSlowMirror(output: 'text' | 'json', check: (o: ReturnType<typeof io>) => Promise<void>) {
      const d = await dirs(`sync-stream-${output}`);
      const gate = await startGate(reg.host);
      try {
        await writeFile(
          join(d.specs, 'm.yaml'),
          mirror({ name: 'slow', namespace: 'team-a', source: `${gate.host}/app/web`, target: `stream-${output}/slow` }) +
            mirror({ name: 'fast', namespace: 'team-a', target: `stream-${output}/fast` }),
        );
        const o = io();
        const done = runSync({ files: [d.specs], output, concurrency: 2, dockerConfig: '/nonexistent', stdout: o.stdout, stderr: o.stderr });
        try {
          await gate.holding;
          await check(o);
        } finally {
          gate.release();
        }
        const r = await done;
        assert.equal(r.exitCode, 0, o.err());
        return o;
      } finally {
        await gate.close();
      }
    }

    it('text: each mirror\'s rows are printed as soon as it finishes, aligned with the rest', async () => {
      const o = await withSlowMirror('text', async (o) => {
        await until(() => (o.out().includes('team-a/fast') ? true : undefined), 'fast mirror printed while slow is held');
        assert.doesNotMatch(o.out(), /team-a\/slow/);
      });
      const lines = o.out().trimEnd().split('\n');
      assert.equal(lines.length, 3, o.out());
      assert.match(lines[0]!, /^MIRROR\s+TARGET\s+ACTION\s+DIGEST\s+COPIED\s+SAVED$/);
      assert.match(lines[1]!, /^team-a\/fast\s/);
      assert.match(lines[2]!, /^team-a\/slow\s/);
      // Columns line up although the rows were written at different times.
      const col = (line: string, word: string) => line.indexOf(word);
      assert.equal(col(lines[1]!, 'Copied'), col(lines[0]!, 'ACTION'));
      assert.equal(col(lines[2]!, 'Copied'), col(lines[0]!, 'ACTION'));
      assert.equal(col(lines[1]!, 'sha256:'), col(lines[0]!, 'DIGEST'));
    });

    it('json: stdout is one document at the end; stderr has a line per mirror as it finishes', async () => {
      const o = await withSlowMirror('json', async (o) => {
        await until(() => (o.err().includes('team-a/fast') ? true : undefined), 'fast mirror reported while slow is held');
        assert.match(o.err(), /^team-a\/fast: Synced: .+$/m);
        assert.equal(o.out(), '');
      });
      const doc = JSON.parse(o.out()) as { mirrors: Array<{ name: string; ready: boolean }> };
      assert.deepEqual(doc.mirrors.map((m) => [m.name, m.ready]), [['slow', true], ['fast', true]]);
      assert.match(o.err(), /^team-a\/slow: Synced: .+$/m);
    });

    it(`--reconcile-timeout: a reconcile that hangs is cut off and reported; sync returns after RECONCILER_CLOSE_GRACE_MS (${RECONCILER_CLOSE_GRACE_MS})`, async () => {
      const d = await dirs('sync-timeout');
      const gate = await startGate(reg.host);
      try {
        await writeFile(join(d.specs, 'm.yaml'), mirror({ name: 'hung', namespace: 'team-a', source: `${gate.host}/app/web`, target: 'hung/web' }));
        const o = io();
        const started = Date.now();
        const r = await runSync({ files: [d.specs], output: 'json', reconcileTimeoutMs: 500, dockerConfig: '/nonexistent', stdout: o.stdout, stderr: o.stderr });
        // Returns once the grace for closing connections the hung reconcile left open has passed.
        const took = Date.now() - started;
        assert.ok(took < 500 + RECONCILER_CLOSE_GRACE_MS + 3000, `${took} ms`);
        assert.equal(r.exitCode, 1);
        assert.match(r.mirrors[0]!.message, /reconcile took longer than 500ms/);
      } finally {
        await gate.close();
      }
    });

    it('policies: a mirror outside its namespace\'s policy is Forbidden, --require-policy refuses unnamed namespaces, an invalid policy is an error at file:line', async () => {
      const d = await dirs('sync-policies');
      const policies = join(d.specs, 'p.yaml');
      await writeFile(
        policies,
        `# policies\napiVersion: imagemirror.dev/v1alpha1\nkind: ImageMirrorPolicy\nmetadata: {name: team-a}\nspec: {namespaces: [team-a], sources: ["${reg.host}/app/**"], targets: ["${reg.host}/pol-a/**"]}\n---\napiVersion: imagemirror.dev/v1alpha1\nkind: ImageMirrorPolicy\nmetadata: {name: broken}\nspec: {namespaces: [team-c], sources: [], targets: ["Upper/**"]}\n`,
      );
      await writeFile(
        join(d.specs, 'm.yaml'),
        mirror({ name: 'inside', namespace: 'team-a', target: 'pol-a/web' }) +
          mirror({ name: 'outside', namespace: 'team-a', target: 'pol-x/web' }) +
          mirror({ name: 'nobody', namespace: 'team-b', target: 'pol-b/web' }),
      );
      const o = io();
      const r = await runSync({ files: [d.specs], output: 'json', requirePolicy: true, dockerConfig: '/nonexistent', stdout: o.stdout, stderr: o.stderr });
      assert.equal(r.exitCode, 1);
      const by = Object.fromEntries(r.mirrors.map((m) => [m.name, m]));
      assert.equal(by.inside?.ready, true, by.inside?.message);
      assert.equal(by.outside?.reason, 'Forbidden');
      assert.equal(by.nobody?.reason, 'Forbidden');
      const broken = r.errors.find((e) => e.file === policies && e.line === 7);
      assert.ok(broken, JSON.stringify(r.errors));
      assert.match(broken.message, /^ImageMirrorPolicy broken: /);
      assert.equal(await client.repository('pol-x/web').headManifest('current'), undefined);
      assert.equal(await client.repository('pol-b/web').headManifest('current'), undefined);
    });
  });
});
