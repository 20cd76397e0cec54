#!/usr/bin/env node
// First step of `npm test`: the tests start real tools (Debian's docker-registry, skopeo, htpasswd,
// openssl, lua5.1, kubectl, promtool) and build the Helm-template renderer with Go against Debian's
// Go sources. When one is missing, say which in one line with the command that installs them, and
// stop, instead of dozens of tests failing with a stack trace each. .ci/run installs the same list.
// No dependencies: it runs before anything else, even before `npm ci` has been checked.
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** [command on PATH, Debian package that provides it] */
const TOOLS = [
  ['docker-registry', 'docker-registry'],
  ['skopeo', 'skopeo'],
  ['htpasswd', 'apache2-utils'],
  ['openssl', 'openssl'],
  ['lua5.1', 'lua5.1'],
  ['go', 'golang-go'],
  ['kubectl', 'kubernetes-client'],
  ['promtool', 'prometheus'],
];

/** [Go import path under $GOPATH/src, Debian package]: what test/support/helm-render builds against. */
const GO_SOURCES = [
  ['github.com/Masterminds/sprig', 'golang-github-masterminds-sprig-dev'],
  ['gopkg.in/yaml.v2', 'golang-gopkg-yaml.v2-dev'],
  ['gopkg.in/yaml.v3', 'golang-gopkg-yaml.v3-dev'],
];

// Same default as test/support/helm-render/render.ts.
const GOPATH = process.env.IMAGE_MIRROR_GOPATH || '/usr/share/gocode';

function onPath(command) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, command);
    try {
      accessSync(file, constants.X_OK);
      if (statSync(file).isFile()) return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

function isDir(path) {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function main() {
  const missing = [];
  const packages = [];
  for (const [command, pkg] of TOOLS) {
    if (onPath(command)) continue;
    missing.push(command);
    packages.push(pkg);
  }
  const sources = [];
  for (const [importPath, pkg] of GO_SOURCES) {
    if (isDir(join(GOPATH, 'src', importPath))) continue;
    sources.push(importPath);
    packages.push(pkg);
  }
  if (sources.length) missing.push(`Go sources ${sources.join(' ')} in ${join(GOPATH, 'src')}`);
  if (missing.length === 0) return 0;
  const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
  const unique = [...new Set(packages)];
  process.stderr.write(`missing: ${missing.join(', ')} — install with: ${sudo}apt-get install -y ${unique.join(' ')}\n`);
  return 1;
}

try {
  process.exitCode = main();
} catch (err) {
  process.stderr.write(`preflight: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
