#!/usr/bin/env bash
# Proves the Flux wiring in examples/flux/ works: starts the service (debug build, demo
# catalog, its own throw-away PostgreSQL), fetches every per-cluster Flux endpoint for every
# demo cluster, renders every example ResourceSet against those real responses the way Flux
# Operator does (scripts/flux-render: Go text/template, << >>, missingkey=error, slim-sprig,
# slugify, toYaml), and validates the example manifests and every rendered object against
# the CRDs in scripts/crds or, for Namespace and RoleBinding, Kubernetes' schema
# (scripts/flux-render/check.py says what else it asserts).
#
#   scripts/check-flux-examples.sh     # ends with "N passed, 0 failed"
#
# Needs Debian's Go 1.19 and three Go libraries (scripts/install-deps.sh installs them; no Go
# module download) and python3 with venv; the Python tools live in a venv under
# ${CARGO_TARGET_DIR:-target}/flux-examples-venv, made once and kept. What each ResourceSet
# rendered for each cluster is left in ${CARGO_TARGET_DIR:-target}/flux-examples/rendered.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
scripts/install-deps.sh tests

venv="$target/flux-examples-venv"
requirements=scripts/flux-render/requirements.txt
stamp="$venv/requirements.sha256"
wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "creating $venv (kubernetes-validate, jsonschema, cel-python)..." >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir -r "$requirements"
  echo "$wanted" >"$stamp"
fi

# GOPATH mode against Debian's packaged sources: the Go module proxy is not reachable.
out=$(mkdir -p "$target/flux-examples" && cd "$target/flux-examples" && pwd)
GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOCACHE="$out/go-cache" \
  go build -o "$out/flux-render" ./scripts/flux-render

cargo build --locked --quiet

token="flux-examples-$RANDOM$RANDOM"
source scripts/lib/demo-server.sh
trap 'stop_demo_server; rm -rf "$demo_work"' EXIT
start_demo_server "$target/debug/flux-catalog" API_MODE=read-only AUTH_TOKEN="$token"

rm -rf "$out/rendered"
# No __pycache__ in the source tree.
PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" scripts/flux-render/check.py \
  --base "$demo_url" --token "$token" --renderer "$out/flux-render" \
  --examples examples/flux --crds scripts/crds --out "$out/rendered" --docs docs/flux.md
