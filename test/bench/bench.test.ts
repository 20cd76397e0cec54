/**
 * Keeps `npm run bench` from rotting: a one-run, small-size retag scenario end to end (both tools,
 * real registries), plus the pieces that turn access logs into the table's numbers.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { countTraffic, parseRequest } from '../../bench/lib/access-log.js';
import { median, ratio, renderTable } from '../../bench/lib/stats.js';
import { checkBudgets, sourceReadBudget, targetBudget, type ControllerRun } from '../../bench/scenarios/controller.js';
import { LISTING_TTL_MS } from '../../src/mirror/shared-reads.js';

const execFileP = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('bench', () => {
  describe('access log counting', () => {
    const A = '127.0.0.1:5001';
    const B = '127.0.0.1:5002';
    const d = 'sha256:' + 'a'.repeat(64);
    it('parses repository names with slashes and the upload digest', () => {
      const p = parseRequest(`/v2/team/dev/web/blobs/uploads/0f1e-uuid?_state=x&digest=${encodeURIComponent(d)}`);
      assert.equal(p.repo, 'team/dev/web');
      assert.equal(p.kind, 'upload');
      assert.equal(p.query.get('digest'), d);
      assert.deepEqual(parseRequest(`/v2/a/manifests/${d}`), { repo: 'a', kind: 'manifest', reference: d, query: new URLSearchParams() });
    });
    it('counts uploads, mounts and source blob GETs on the right registry only', () => {
      const c = countTraffic(
        [
          { registry: A, method: 'GET', path: `/v2/src/app/blobs/${d}`, status: 200, bytes: 10 },
          { registry: B, method: 'GET', path: `/v2/src/app/blobs/${d}`, status: 200, bytes: 10 },
          { registry: A, method: 'GET', path: `/v2/other/blobs/${d}`, status: 200, bytes: 10 },
          { registry: A, method: 'HEAD', path: `/v2/src/app/blobs/${d}`, status: 200, bytes: 0 },
          { registry: B, method: 'POST', path: `/v2/dst/blobs/uploads/?mount=${d}&from=src`, status: 201, bytes: 0 },
          { registry: B, method: 'POST', path: `/v2/dst/blobs/uploads/?mount=${d}&from=nope`, status: 202, bytes: 0 },
          { registry: B, method: 'PUT', path: `/v2/dst/blobs/uploads/u1?digest=${d}`, status: 201, bytes: 0 },
          { registry: B, method: 'PUT', path: `/v2/dst/blobs/uploads/u2?digest=${d}`, status: 400, bytes: 0 },
        ],
        [{ registry: A, repo: 'src/app' }],
      );
      assert.deepEqual(c, { requests: 8, blobUploads: 1, blobMounts: 1, uploadedDigests: [d], sourceBlobGets: 1 });
    });
  });

  describe('controller request budgets', () => {
    const run = (o: Partial<ControllerRun>): ControllerRun => ({
      mirrors: 1000, wallMs: 9000, reconciles: 1000, reconcileSeconds: 0, reconcileCount: 0, targetRequests: 6000, targetUploads: 0, targetByKind: {},
      sourceRequests: 4, sourceTagLists: 2, sourceHeads: 2, sourceBlobGets: 0, peakRssKb: 0, cpuSeconds: 0, targetRegistryCpuSeconds: 0, apiServerCpuSeconds: 0, ...o,
    });
    it('allows one source read per sharing window and 6 target requests per mirror, plus 3 per first-copy upload', () => {
      assert.equal(sourceReadBudget(LISTING_TTL_MS - 1), 1);
      assert.equal(sourceReadBudget(2 * LISTING_TTL_MS), 3);
      assert.equal(targetBudget({ mirrors: 1000, targetUploads: 3 }), 6009);
      const lines: string[] = [];
      checkBudgets(run({ targetRequests: 6009, targetUploads: 3 }), 'ok', (m) => lines.push(m));
      assert.match(lines[0]!, /6009 requests, 6\.01 per mirror \(allowed 6009/);
    });
    it('fails a run over budget, naming each budget exceeded', () => {
      assert.throws(() => checkBudgets(run({ targetRequests: 9000 }), 'x', () => {}), /target 9000 requests > 6000$/);
      assert.throws(() => checkBudgets(run({ sourceTagLists: 1000, sourceHeads: 1000 }), 'x', () => {}), /source tags\/list 1000 > 2; source manifest HEADs 1000 > 2$/);
    });
  });

  describe('table', () => {
    it('takes medians and prints ratios', () => {
      assert.equal(median([3, 1, 2]), 2);
      assert.equal(median([4, 1, 2, 3]), 2.5);
      assert.equal(ratio(1, 4), '0.25');
      assert.equal(ratio(0, 0), 'same');
      assert.equal(ratio(3, 0), '∞');
      assert.equal(ratio(3, undefined), '–');
      const t = renderTable(['a', 'n'], [['x', '1'], ['yy', '10']], [false, true]);
      assert.equal(t, '| a  |  n |\n|----|---:|\n| x  |  1 |\n| yy | 10 |');
    });
  });

  it('runs the retag scenario once with --quick and prints the table with numbers', async function () {
    this.timeout(120000);
    const dir = await mkdtemp(join(tmpdir(), 'imc-bench-test-'));
    try {
      const out = join(dir, 'results.json');
      const { stdout } = await execFileP(
        process.execPath,
        ['--import', 'tsx', 'bench/run.ts', '--quick', '--scenario', 'retag', '--runs', '1', '--tsx', '--out', out],
        { cwd: ROOT, timeout: 110000 },
      );
      assert.match(stdout, /^\| scenario +\| metric +\| +ours \| +skopeo \| +ratio \|$/m);
      assert.match(stdout, /^\| retag in the same repo +\| wall time +\| +\d+\.\d\d s \| +\d+\.\d\d s \| +[\d.]+ \|$/m);
      assert.match(stdout, /^\| +\| registry requests +\| +\d+ \| +\d+ \| +[\d.]+ \|$/m);
      assert.match(stdout, /^\| +\| peak RSS +\| +\d+ MiB \| +\d+ MiB \| +[\d.]+ \|$/m);
      const results = JSON.parse(await readFile(out, 'utf8')) as {
        scenarios: Array<{ name: string; medians: Record<'ours' | 'skopeo', Record<string, number>> }>;
      };
      const retag = results.scenarios.find((s) => s.name === 'retag');
      assert.ok(retag, 'results.json has the retag scenario');
      // A retag within one repository is a manifest PUT: no blob moves, for either tool.
      assert.equal(retag.medians.ours.blob_uploads, 0);
      assert.equal(retag.medians.ours.bytes_uploaded, 0);
      assert.equal(retag.medians.skopeo.blob_uploads, 0);
      assert.ok(retag.medians.ours.requests! > 0 && retag.medians.skopeo.requests! > 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('npm run demo', () => {
    it('promotes dev -> staging (mounts) -> prod (upload, then retag), shows metrics, re-syncs as a no-op and cleans up', async function () {
      this.timeout(120000);
      const { stdout } = await execFileP('bash', ['scripts/demo.sh'], { cwd: ROOT, timeout: 110000 });
      const step = (title: RegExp) => {
        const start = stdout.search(title);
        assert.ok(start >= 0, `demo output has a step matching ${title}`);
        const next = stdout.indexOf('\n==> ', start + 1);
        return stdout.slice(start, next < 0 ? undefined : next);
      };
      const s1 = step(/==> Step 1/);
      assert.match(s1, /staging\/web:1\.4\.2 +Copied +sha256:[0-9a-f]{64} +0 B +\d/);
      assert.match(s1, /imagemirror_blobs_total\{action="mount"\} [1-9]/);
      // Counters start at zero: an upload-free step shows the upload series at 0.
      assert.match(s1, /imagemirror_blobs_total\{action="upload"\} 0\n/);
      const s2 = step(/==> Step 2/);
      assert.match(s2, /prod\/web:stable +Copied/);
      assert.match(s2, /prod\/web:1\.4 +Retagged/);
      assert.match(s2, /imagemirror_bytes_saved_total\{method="retag"\} [1-9]/);
      const shown = step(/==> What prod\/web/);
      assert.match(shown, /prod\/web:sha256-[0-9a-f]{12}… +sha256:[0-9a-f]{64} +referrers of/);
      const digests = new Set([...step(/==> Pushing/).matchAll(/= (sha256:[0-9a-f]{64})/g), ...step(/==> Step 1/).matchAll(/sha256:[0-9a-f]{64}/g), ...shown.matchAll(/:(?:stable|1\.4) +(sha256:[0-9a-f]{64})/g)].map((m) => m[1] ?? m[0]));
      assert.equal(digests.size, 1, 'staging and both prod tags hold the digest pushed to dev');
      const resync = step(/==> Re-sync/);
      assert.equal([...resync.matchAll(/ UpToDate /g)].length, 3);
      assert.doesNotMatch(resync, /Copied|Retagged|Failed/);
      const work = /storage under (\S+)\)/.exec(stdout)?.[1];
      assert.ok(work && !existsSync(work), 'the demo deleted its temp dir on exit');
    });
  });
});
