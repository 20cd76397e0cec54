import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import {
  POLICY_LIMITS,
  POLICY_MESSAGE_MAX_POLICIES,
  POLICY_PATTERNS,
  checkPolicy,
  globMatch,
  globProblem,
  validatePolicy,
  type ImageMirrorPolicy,
} from '../../src/mirror/policy.js';
import { createReconciler, type MirrorReconciler } from '../../src/mirror/reconcile.js';
import type { ReconcileContext } from '../../src/mirror/reconciler.js';
import { STALLED_REASONS, type ImageMirror, type ImageMirrorSpec } from '../../src/mirror/types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { buildImage, pushImage } from '../support/images.js';

const EXAMPLE = {
  apiVersion: 'imagemirror.dev/v1alpha1',
  kind: 'ImageMirrorPolicy',
  metadata: { name: 'team-a' },
  spec: {
    namespaces: ['team-a'],
    sources: ['registry.example.com/dev/**'],
    targets: ['registry.example.com/staging/team-a/**'],
  },
};

function policy(name: string, namespaces: string[], sources: string[], targets: string[]): ImageMirrorPolicy {
  const v = validatePolicy({ ...EXAMPLE, metadata: { name }, spec: { namespaces, sources, targets } });
  if (!v.ok) throw new Error(v.errors.join('; '));
  return v.policy;
}

function mirror(namespace: string, source: string, targets: string[]): ImageMirror {
  return {
    apiVersion: 'imagemirror.dev/v1alpha1',
    kind: 'ImageMirror',
    metadata: { name: 'm', namespace },
    spec: { source: { repository: source, tags: ['1.0'] }, targets: targets.map((repository) => ({ repository })) },
  };
}

/** The obvious backtracking reading of the glob (exponential in the worst case; small inputs only). */
function referenceMatch(glob: string, text: string): boolean {
  const p = glob.split('/');
  const t = text.split('/');
  const seg = (pat: string, s: string): boolean => new RegExp(`^${pat.split('*').map((x) => x.replace(/[.]/g, '\\.')).join('[^/]*')}$`).test(s);
  const rec = (i: number, j: number): boolean => {
    if (i === p.length) return j === t.length;
    if (p[i] === '**') return rec(i + 1, j) || (j < t.length && rec(i, j + 1));
    return j < t.length && seg(p[i]!, t[j]!) && rec(i + 1, j + 1);
  };
  return rec(0, 0);
}

describe('ImageMirrorPolicy globs', () => {
  it('`**` matches any depth (zero included), `*` stays within one segment', () => {
    const cases: Array<[string, string, boolean]> = [
      ['registry.example.com/dev/**', 'registry.example.com/dev/web', true],
      ['registry.example.com/dev/**', 'registry.example.com/dev/a/b/c', true],
      ['registry.example.com/dev/**', 'registry.example.com/dev', true],
      ['registry.example.com/dev/**', 'registry.example.com/devel/web', false],
      ['registry.example.com/dev/**', 'other.example.com/dev/web', false],
      ['registry.example.com/dev/*', 'registry.example.com/dev/web', true],
      ['registry.example.com/dev/*', 'registry.example.com/dev/a/web', false],
      ['registry.example.com/*/web', 'registry.example.com/dev/web', true],
      ['registry.example.com/*/web', 'registry.example.com/a/b/web', false],
      ['registry.example.com/**/web', 'registry.example.com/a/b/web', true],
      ['registry.example.com/**/web', 'registry.example.com/web', true],
      ['*/team-a/**', 'localhost:5000/team-a/x', true],
      ['*/team-a/**', 'localhost:5000/team-b/x', false],
      ['docker.io/library/*', 'docker.io/library/nginx', true],
      ['registry.example.com/app-*', 'registry.example.com/app-web', true],
      ['registry.example.com/app-*', 'registry.example.com/api-web', false],
      ['registry.example.com/a*b*c', 'registry.example.com/aXXbYYc', true],
      ['registry.example.com/a*b*c', 'registry.example.com/aXXbYY', false],
    ];
    for (const [glob, text, want] of cases) assert.equal(globMatch(glob, text), want, `${glob} vs ${text}`);
  });

  it('agrees with the obvious regular-expression reading on random inputs', () => {
    const seg = fc.constantFrom('a', 'b', 'ab', 'ba', 'aa');
    const patSeg = fc.constantFrom('a', 'b', '*', 'a*', '*b', 'a*b', '**');
    fc.assert(
      fc.property(fc.array(patSeg, { minLength: 1, maxLength: 5 }), fc.array(seg, { minLength: 1, maxLength: 6 }), (p, t) => {
        const glob = `r.io/${p.join('/')}`;
        const text = `r.io/${t.join('/')}`;
        assert.equal(globMatch(glob, text), referenceMatch(glob, text), `${glob} vs ${text}`);
      }),
      { numRuns: 500 },
    );
  });

  it('stays fast on patterns that make a backtracking matcher explode', () => {
    // 60 single-segment stars against 200 characters, and a pattern of many `**` segments.
    const stars = `r.io/${'*a'.repeat(60)}b`;
    const deep = `r.io/${Array(60).fill('**').join('/')}/b`;
    assert.ok(stars.length <= POLICY_LIMITS.patternLength && deep.length <= POLICY_LIMITS.patternLength);
    assert.equal(globProblem(stars), undefined);
    assert.equal(globProblem(deep), undefined);
    const t0 = performance.now();
    assert.equal(globMatch(stars, `r.io/${'a'.repeat(200)}`), false);
    assert.equal(globMatch(deep, `r.io/${Array(120).fill('a').join('/')}`), false);
    const ms = performance.now() - t0;
    assert.ok(ms < 250, `took ${ms.toFixed(1)} ms`);
  });

  it('refuses globs that could never match a canonical name, saying what to write', () => {
    assert.match(globProblem('Registry.example.com/x') ?? '', /lowercase/);
    assert.match(globProblem('docker.io/nginx') ?? '', /canonical form "docker\.io\/library\/nginx"/);
    assert.match(globProblem('index.docker.io/library/*') ?? '', /"docker\.io" instead of "index\.docker\.io"/);
    assert.match(globProblem('registry.example.com/team**') ?? '', /whole path segment/);
    assert.match(globProblem('registry.example.com//x') ?? '', /empty path segment/);
    assert.match(globProblem('team-a/**') ?? '', /not a registry host/);
    assert.match(globProblem('**') ?? '', /registry\/repository/);
    assert.equal(globProblem('*/team-a/**'), undefined);
    assert.equal(globProblem('localhost:5000/x'), undefined);
  });
});

describe('validatePolicy', () => {
  it('a huge wrong value is quoted cut short: every error stays one short line', () => {
    const v = validatePolicy({ ...EXAMPLE, apiVersion: 'x'.repeat(1_000_000), kind: 'y\n'.repeat(1000) });
    assert.equal(v.ok, false);
    if (v.ok) return;
    for (const e of v.errors) {
      assert.ok(e.length < 200, `${e.length} characters: ${e.slice(0, 120)}`);
      assert.ok(!e.includes('\n'), e);
    }
  });

  it('accepts the documented example and returns it unchanged', () => {
    const v = validatePolicy(EXAMPLE);
    assert.ok(v.ok, JSON.stringify(v));
    assert.deepEqual(v.policy, EXAMPLE);
  });

  it('refuses unknown fields, a namespace on this cluster-scoped kind, missing and wrong-typed fields', () => {
    const bad = (obj: unknown): string[] => {
      const v = validatePolicy(obj);
      assert.equal(v.ok, false, JSON.stringify(obj));
      return v.ok ? [] : v.errors;
    };
    assert.deepEqual(bad({ ...EXAMPLE, spec: { ...EXAMPLE.spec, target: ['x'] } }), ['spec.target: unknown field (known: namespaces, sources, targets)']);
    assert.match(bad({ ...EXAMPLE, metadata: { name: 'p', namespace: 'team-a' } }).join(), /cluster-scoped/);
    assert.match(bad({ ...EXAMPLE, metadata: { name: 'p', nmae: 'x' } }).join(), /metadata\.nmae: unknown field/);
    assert.match(bad({ ...EXAMPLE, spec: { sources: ['a.io/x'], targets: ['a.io/y'] } }).join(), /spec\.namespaces: required/);
    assert.match(bad({ ...EXAMPLE, spec: { ...EXAMPLE.spec, namespaces: 'team-a' } }).join(), /spec\.namespaces: must be a list/);
    assert.match(bad({ ...EXAMPLE, spec: { ...EXAMPLE.spec, namespaces: [] } }).join(), /at least one/);
    assert.match(bad({ ...EXAMPLE, spec: { ...EXAMPLE.spec, namespaces: ['Team_A'] } }).join(), /spec\.namespaces\[0\]/);
    assert.match(bad({ ...EXAMPLE, spec: { ...EXAMPLE.spec, sources: ['a.io/x', 'a.io/x'] } }).join(), /spec\.sources\[1\]: duplicate/);
    assert.match(bad({ ...EXAMPLE, kind: 'ImageMirror' }).join(), /kind: must be ImageMirrorPolicy/);
    assert.equal((validatePolicy('x') as { name: string }).name, '<unnamed>');
  });

  it('bounds every list and string (exactly at the limit passes, one more fails)', () => {
    const ns = (n: number) => Array.from({ length: n }, (_, i) => `ns-${i}`);
    const globs = (n: number) => Array.from({ length: n }, (_, i) => `r.io/g${i}/**`);
    const withSpec = (spec: Partial<typeof EXAMPLE.spec>) => validatePolicy({ ...EXAMPLE, spec: { ...EXAMPLE.spec, ...spec } });
    assert.ok(withSpec({ namespaces: ns(POLICY_LIMITS.namespaces) }).ok);
    assert.ok(!withSpec({ namespaces: ns(POLICY_LIMITS.namespaces + 1) }).ok);
    assert.ok(withSpec({ sources: globs(POLICY_LIMITS.patterns), targets: globs(POLICY_LIMITS.patterns) }).ok);
    assert.ok(!withSpec({ sources: globs(POLICY_LIMITS.patterns + 1) }).ok);
    assert.ok(!withSpec({ targets: globs(POLICY_LIMITS.patterns + 1) }).ok);
    const long = (n: number) => `r.io/${'a'.repeat(n - 'r.io/'.length)}`;
    assert.ok(withSpec({ targets: [long(POLICY_LIMITS.patternLength)] }).ok);
    assert.ok(!withSpec({ targets: [long(POLICY_LIMITS.patternLength + 1)] }).ok);
    assert.ok(withSpec({ namespaces: ['a'.repeat(POLICY_LIMITS.namespaceLength)] }).ok);
    assert.ok(!withSpec({ namespaces: ['a'.repeat(POLICY_LIMITS.namespaceLength + 1)] }).ok);
    const named = (n: number) => validatePolicy({ ...EXAMPLE, metadata: { name: 'a'.repeat(n) } });
    assert.ok(named(POLICY_LIMITS.nameLength).ok);
    assert.ok(!named(POLICY_LIMITS.nameLength + 1).ok);
  });
});

describe('CRD crds/imagemirrorpolicy.yaml', () => {
  type Schema = { properties?: Record<string, Schema>; items?: Schema; [k: string]: unknown };
  const crd = parseYaml(readFileSync(new URL('../../crds/imagemirrorpolicy.yaml', import.meta.url), 'utf8')) as {
    spec: { scope: string; names: { kind: string; plural: string; shortNames: string[] }; versions: Array<{ schema: { openAPIV3Schema: Schema }; additionalPrinterColumns: Array<{ jsonPath: string }> }> };
  };
  const spec = crd.spec.versions[0]!.schema.openAPIV3Schema.properties!.spec!;

  it('is cluster-scoped with a short name and printer columns', () => {
    assert.equal(crd.spec.scope, 'Cluster');
    assert.equal(crd.spec.names.kind, 'ImageMirrorPolicy');
    assert.equal(crd.spec.names.plural, 'imagemirrorpolicies');
    assert.ok(crd.spec.names.shortNames.includes('imp'));
    assert.deepEqual(crd.spec.versions[0]!.additionalPrinterColumns.map((c) => c.jsonPath), ['.spec.namespaces', '.spec.sources', '.spec.targets', '.metadata.creationTimestamp']);
  });

  it('carries the same bounds and patterns as validatePolicy', () => {
    const ns = spec.properties!.namespaces!;
    assert.equal(ns.maxItems, POLICY_LIMITS.namespaces);
    assert.equal(ns.items!.maxLength, POLICY_LIMITS.namespaceLength);
    assert.equal(ns.items!.pattern, POLICY_PATTERNS.dns1123Label);
    for (const k of ['sources', 'targets']) {
      const list = spec.properties![k]!;
      assert.equal(list.maxItems, POLICY_LIMITS.patterns, k);
      assert.equal(list.items!.maxLength, POLICY_LIMITS.patternLength, k);
      assert.equal(list.items!.pattern, POLICY_PATTERNS.glob, k);
    }
    assert.deepEqual(spec.required, ['namespaces', 'sources', 'targets']);
  });

  it('its schema accepts the example and refuses what validatePolicy refuses for bounds', () => {
    const strict = (s: Schema): Schema => {
      const out: Schema = {};
      for (const [k, v] of Object.entries(s)) {
        if (k.startsWith('x-kubernetes-')) continue;
        out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as Record<string, Schema>).map(([p, ps]) => [p, strict(ps)])) : k === 'items' ? strict(v as Schema) : v;
      }
      if (out.type === 'object' && out.properties) out.additionalProperties = false;
      return out;
    };
    const validate = new Ajv({ strict: false }).compile(strict(spec) as object);
    assert.ok(validate(EXAMPLE.spec));
    assert.ok(!validate({ ...EXAMPLE.spec, extra: 1 }));
    assert.ok(!validate({ ...EXAMPLE.spec, targets: ['Registry.example.com/x'] }));
    assert.ok(!validate({ ...EXAMPLE.spec, sources: Array.from({ length: POLICY_LIMITS.patterns + 1 }, (_, i) => `r.io/${i}`) }));
  });
});

describe('checkPolicy', () => {
  const teamA = policy('team-a', ['team-a'], ['registry.example.com/dev/**'], ['registry.example.com/staging/team-a/**']);
  const shared = policy('shared', ['team-a', 'team-b'], ['docker.io/library/*'], ['registry.example.com/mirror/*']);

  it('a namespace no policy names is unrestricted, unless policies are required', () => {
    const m = mirror('team-c', 'anything.example.com/x', ['anywhere.example.com/y']);
    assert.deepEqual(checkPolicy(m, [teamA, shared], false), { allowed: true });
    const d = checkPolicy(m, [teamA, shared], true);
    assert.equal(d.allowed, false);
    assert.match((d as { message: string }).message, /namespace team-c is named by no ImageMirrorPolicy and the controller runs with --require-policy/);
  });

  it('a named namespace must fit one policy wholly: source and every target', () => {
    assert.deepEqual(checkPolicy(mirror('team-a', 'registry.example.com/dev/web', ['registry.example.com/staging/team-a/web']), [teamA, shared], false), { allowed: true });
    // Canonical forms: `nginx` is docker.io/library/nginx.
    assert.deepEqual(checkPolicy(mirror('team-b', 'nginx', ['registry.example.com/mirror/nginx']), [teamA, shared], true), { allowed: true });
    // Source from one policy, target from the other: not allowed.
    const mixed = checkPolicy(mirror('team-a', 'registry.example.com/dev/web', ['registry.example.com/mirror/web']), [teamA, shared], false);
    assert.equal(mixed.allowed, false);
    const msg = (mixed as { message: string }).message;
    assert.match(msg, /target registry\.example\.com\/mirror\/web matches none of ImageMirrorPolicy team-a spec\.targets \["registry\.example\.com\/staging\/team-a\/\*\*"\]/);
    assert.match(msg, /source registry\.example\.com\/dev\/web matches none of ImageMirrorPolicy shared spec\.sources \["docker\.io\/library\/\*"\]/);
    // `*` is one segment: a nested target is outside shared's targets.
    const nested = checkPolicy(mirror('team-b', 'nginx', ['registry.example.com/mirror/a/nginx']), [shared], false);
    assert.match((nested as { message: string }).message, /target registry\.example\.com\/mirror\/a\/nginx matches none of ImageMirrorPolicy shared/);
    // One target out of two outside is enough to deny.
    const second = checkPolicy(mirror('team-a', 'registry.example.com/dev/web', ['registry.example.com/staging/team-a/web', 'registry.example.com/prod/web']), [teamA], false);
    assert.match((second as { message: string }).message, /target registry\.example\.com\/prod\/web/);
  });

  it(`names at most ${POLICY_MESSAGE_MAX_POLICIES} policies in a denial, then counts the rest`, () => {
    const many = Array.from({ length: POLICY_MESSAGE_MAX_POLICIES + 2 }, (_, i) => policy(`p${i}`, ['team-a'], [`r${i}.example.com/**`], ['t.example.com/**']));
    const d = checkPolicy(mirror('team-a', 'other.example.com/x', ['t.example.com/x']), many, false) as { message: string };
    assert.equal(d.message.match(/ImageMirrorPolicy p\d/g)?.length, POLICY_MESSAGE_MAX_POLICIES);
    assert.match(d.message, /and 2 more policies$/);
  });

  it('Forbidden is a stalled reason', () => {
    assert.ok(STALLED_REASONS.has('Forbidden'));
  });
});

describe('reconcile under ImageMirrorPolicies (real registry)', function () {
  this.timeout(60_000);
  let reg: TestRegistry;
  let reconciler: MirrorReconciler;
  const anonymous: ReconcileContext = { credentials: async () => ({ get: async () => undefined }) };

  before(async () => {
    reg = await startRegistry();
    const client = new RegistryClient(reg.host);
    await pushImage(client.repository('dev/web'), buildImage(), '1.0');
    await client.close();
  });
  beforeEach(() => {
    reconciler = createReconciler();
  });
  afterEach(() => reconciler.close());
  after(() => reg.stop());

  const spec = (target: string): ImageMirrorSpec => ({ source: { repository: `${reg.host}/dev/web`, tags: ['1.0'] }, targets: [{ repository: `${reg.host}/${target}` }] });
  const m = (namespace: string, target: string): ImageMirror => ({ apiVersion: 'imagemirror.dev/v1alpha1', kind: 'ImageMirror', metadata: { name: 'web', namespace, generation: 1 }, spec: spec(target) });

  it('outside its policy: Stalled Forbidden naming the rule, and not one registry request', async () => {
    const policies = [policy('team-a', ['team-a'], [`${reg.host}/dev/**`], [`${reg.host}/staging/team-a/**`])];
    await reg.resetLog();
    const r = await reconciler.reconcile(m('team-a', 'prod/web'), { ...anonymous, policies });
    assert.equal(r.outcome, 'stalled');
    assert.equal(r.reason, 'Forbidden');
    assert.match(r.message, new RegExp(`target ${reg.host.replace(/\./g, '\\.')}/prod/web matches none of ImageMirrorPolicy team-a spec\\.targets`));
    assert.deepEqual(r.status.conditions?.map((c) => [c.type, c.status, c.reason]), [['Ready', 'False', 'Forbidden'], ['Stalled', 'True', 'Forbidden']]);
    assert.deepEqual(await reg.accessLog(), [], 'a forbidden mirror reads and writes nothing');

    // Inside it: synced, and `**` covers a nested target.
    const ok = await reconciler.reconcile(m('team-a', 'staging/team-a/apps/web'), { ...anonymous, policies });
    assert.equal(ok.outcome, 'synced', ok.message);
  });

  it('--require-policy: a namespace no policy names is Forbidden before any request', async () => {
    const policies = [policy('team-a', ['team-a'], [`${reg.host}/dev/**`], [`${reg.host}/**`])];
    await reg.resetLog();
    const r = await reconciler.reconcile(m('team-z', 'z/web'), { ...anonymous, policies, requirePolicy: true });
    assert.equal(r.reason, 'Forbidden');
    assert.match(r.message, /namespace team-z is named by no ImageMirrorPolicy/);
    const none = await reconciler.reconcile(m('team-z', 'z/web'), { ...anonymous, policies: [], requirePolicy: true });
    assert.equal(none.reason, 'Forbidden');
    assert.deepEqual(await reg.accessLog(), []);
    // Without the flag the same mirror runs.
    assert.equal((await reconciler.reconcile(m('team-z', 'z/web'), { ...anonymous, policies })).outcome, 'synced');
  });
});
