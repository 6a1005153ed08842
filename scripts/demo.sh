#!/usr/bin/env bash
# Runs flux-catalog in crud mode on its embedded PostgreSQL (data in .flux-catalog/), loaded
# with the demo catalog, on http://127.0.0.1:8080. Stop it with Ctrl-C; run it again and the
# data is still there, edits included (the demo catalog only fills in what is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

export API_MODE=crud
export AUTH_TOKEN="${AUTH_TOKEN:-demo-read-token}"
export CRUD_AUTH_TOKEN="${CRUD_AUTH_TOKEN:-demo-write-token}"
export LISTEN_ADDR="${LISTEN_ADDR:-127.0.0.1:8080}"
export SEED_FILE="${SEED_FILE:-demo/catalog.json}"

# The first build takes several minutes on a small machine: show cargo's progress.
echo "building flux-catalog (the first build takes a few minutes)..." >&2
cargo build --locked
url="http://${LISTEN_ADDR/0.0.0.0/127.0.0.1}"
cat <<BANNER

flux-catalog demo: crud mode, embedded PostgreSQL, demo catalog loaded.

  Flux inputs for a cluster (read token):
    curl -H "Authorization: Bearer $AUTH_TOKEN" $url/api/v2/flux/clusters/demo-dev-01.k8s.example.com/platform-components
  All clusters:
    curl -H "Authorization: Bearer $AUTH_TOKEN" $url/api/v2/flux/clusters
  Change something (write token):
    curl -X PATCH -H "Authorization: Bearer $CRUD_AUTH_TOKEN" -H "Content-Type: application/merge-patch+json" \\
         -d '{"oci_tag": "v1.16.3"}' $url/platform_components/cert-manager
  API description: $url/openapi.yaml      Probes: $url/health  $url/ready

BANNER
exec "${CARGO_TARGET_DIR:-target}/debug/flux-catalog" serve
