#!/usr/bin/env bash
# npm run demo: a promotion dev -> staging -> prod across two throwaway local registries, with the
# bytes it saved, then a re-sync that changes nothing. Needs node (and, the first time, root for
# apt-get). Everything it starts is stopped and deleted on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

command -v node >/dev/null || die "node is not installed (Node 20.19 or newer)"
if ! command -v docker-registry >/dev/null; then
  [ "$(id -u)" -eq 0 ] || die "needs docker-registry: run as root, or first: sudo apt-get install -y docker-registry"
  say "Installing docker-registry (Debian's distribution 2.8) with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q docker-registry >/dev/null
fi
if [ ! -d node_modules ]; then
  say "Installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/image-mirror-demo.XXXXXX")
registries_pid=""
cleanup() {
  if [ -n "$registries_pid" ]; then
    kill -TERM "$registries_pid" 2>/dev/null || true
    wait "$registries_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tsx() { node --import tsx "$@"; }
image_mirror() { node bin/image-mirror.js "$@"; }
metrics() {
  grep -E '^imagemirror_(bytes_saved_total|bytes_copied_total|blobs_total)' "$1" | sed 's/^/    /' || echo "    (no byte or blob metrics written)"
}

say "Starting two local registries, A and B (docker-registry on loopback ports, storage under $work)"
# node directly, not through a shell function: $! must be the process that the trap signals.
node --import tsx scripts/demo/registries.ts "$work/registries.env" &
registries_pid=$!
for _ in $(seq 1 300); do
  [ -f "$work/registries.env" ] && break
  kill -0 "$registries_pid" 2>/dev/null || die "the registries did not start"
  sleep 0.1
done
[ -f "$work/registries.env" ] || die "the registries did not answer within 30 s"
# shellcheck disable=SC1091
. "$work/registries.env"
echo "    A = $REGISTRY_A    B = $REGISTRY_B"

say "Pushing a sample image to A: dev/web:1.4.2 (an index of 3 platforms, signed)"
tsx scripts/demo/push-samples.ts "$REGISTRY_A" dev/web 1.4.2 | sed 's/^/    /'

mkdir "$work/specs"
for template in scripts/demo/*.yaml.tmpl; do
  sed -e "s|\${REGISTRY_A}|$REGISTRY_A|g" -e "s|\${REGISTRY_B}|$REGISTRY_B|g" "$template" >"$work/specs/$(basename "$template" .tmpl)"
done
echo "    ImageMirrors written from scripts/demo/*.yaml.tmpl to $work/specs"

say "Step 1: dev/web -> staging/web on registry A (same registry: manifests copied, blobs mounted)"
image_mirror sync -f "$work/specs/1-dev-to-staging.yaml" --metrics-file "$work/step1.prom" || die "step 1 failed"
echo "  metrics:"
metrics "$work/step1.prom"

say "Step 2: staging/web on A -> prod/web on registry B as tags stable and 1.4"
image_mirror sync -f "$work/specs/2-staging-to-prod.yaml" --metrics-file "$work/step2.prom" || die "step 2 failed"
echo "  metrics:"
metrics "$work/step2.prom"

say "What prod/web on registry B holds now (the sha256-… tag lists the signature)"
tsx scripts/demo/show.ts "$REGISTRY_B" prod/web

say "Re-sync of both mirrors, nothing changed upstream: every target tag is already up to date"
image_mirror sync -f "$work/specs" --metrics-file "$work/resync.prom" || die "the re-sync failed"
echo "  metrics:"
metrics "$work/resync.prom"

say "Done; stopping the registries and deleting $work"
