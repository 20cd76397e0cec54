/**
 * Prints what a repository holds after the demo: each tag and the digest it points at (HEAD only).
 *
 *   node --import tsx scripts/demo/show.ts HOST:PORT REPO
 */
const [host, repo] = process.argv.slice(2);
if (!host || !repo) {
  process.stderr.write('usage: show.ts HOST:PORT REPO\n');
  process.exit(2);
}
const ACCEPT = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json';
const r = await fetch(`http://${host}/v2/${repo}/tags/list`);
if (r.status !== 200) {
  process.stderr.write(`demo: listing tags of ${host}/${repo}: HTTP ${r.status}\n`);
  process.exit(1);
}
const { tags } = (await r.json()) as { tags: string[] | null };
const rows: Array<[string, string]> = [];
for (const t of (tags ?? []).sort()) {
  const h = await fetch(`http://${host}/v2/${repo}/manifests/${t}`, { method: 'HEAD', headers: { accept: ACCEPT } });
  const kind = (h.headers.get('content-type') ?? '').includes('index') ? 'index' : 'manifest';
  const digest = h.headers.get('docker-content-digest') ?? '?';
  // The referrers fallback tag is 71 characters; shorten it so the digests line up.
  const label = t.startsWith('sha256-') ? `${t.slice(0, 19)}…` : t;
  const what = t.startsWith('sha256-') ? `referrers of sha256:${t.slice(7, 19)}…` : kind;
  rows.push([`${repo}:${label}`, `${digest}  ${what}`]);
}
const width = Math.max(...rows.map(([l]) => l.length));
for (const [l, r] of rows) process.stdout.write(`    ${l.padEnd(width)}  ${r}\n`);
