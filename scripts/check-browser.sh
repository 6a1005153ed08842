#!/usr/bin/env bash
# The API browser in a real browser: starts the service (debug build, demo catalog, its own
# throw-away PostgreSQL), opens /docs in Debian's chromium driven by playwright-core, and
# checks that every operation of /openapi.json is listed, that one can be tried with a
# token, that no request leaves this machine and that the console shows no errors
# (scripts/browser/check-docs.cjs). A screenshot of a failure goes to a temporary
# directory, never into the repository.
#
#   scripts/check-browser.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh browser
# playwright-core at the version in scripts/browser/package-lock.json, installed beside the
# build; it drives the system's chromium (its own browser download is not used).
node_dir="${CARGO_TARGET_DIR:-target}/browser-check"
mkdir -p "$node_dir"
if ! cmp -s scripts/browser/package-lock.json "$node_dir/package-lock.json" \
  || [ ! -d "$node_dir/node_modules/playwright-core" ]; then
  cp scripts/browser/package.json scripts/browser/package-lock.json "$node_dir/"
  (cd "$node_dir" && npm ci --no-audit --no-fund --silent)
fi
cargo build --locked --quiet

read_token="browser-read-$RANDOM$RANDOM"
source scripts/lib/demo-server.sh
cleanup() {
  local status=$?
  stop_demo_server
  if [ "$status" -eq 0 ]; then
    rm -rf "$demo_work"
  else
    # The screenshot and the logs stay for a look; PostgreSQL's data goes.
    rm -rf "$demo_work/postgres"
    echo "check-browser: logs and any screenshot in $demo_work" >&2
  fi
}
trap cleanup EXIT
start_demo_server "${CARGO_TARGET_DIR:-target}/debug/flux-catalog" \
  API_MODE=crud AUTH_TOKEN="$read_token" CRUD_AUTH_TOKEN="browser-write-$RANDOM$RANDOM"

script="$PWD/scripts/browser/check-docs.cjs"
(cd "$node_dir" && timeout 60 node "$script" "$demo_url" "$read_token" "$demo_work")
