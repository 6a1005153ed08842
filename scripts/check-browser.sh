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

work=$(mktemp -d)
# As root, PostgreSQL runs as the postgres user, who must be able to enter it.
chmod 755 "$work"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
read_token="browser-read-$RANDOM$RANDOM"
# Never the caller's DATABASE_URL: the demo catalog is loaded into it.
env -u DATABASE_URL API_MODE=crud AUTH_TOKEN="$read_token" CRUD_AUTH_TOKEN="browser-write-$RANDOM$RANDOM" \
  LISTEN_ADDR="127.0.0.1:$port" SEED_FILE=demo/catalog.json \
  FLUX_CATALOG_DATABASE__EMBEDDED_DATA_DIR="$work/postgres" RUST_LOG=warn \
  "${CARGO_TARGET_DIR:-target}/debug/flux-catalog" serve 2>"$work/server.log" &
server=$!
cleanup() {
  local status=$?
  kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  if [ "$status" -eq 0 ]; then
    rm -rf "$work"
  else
    # The screenshot and the logs stay for a look; PostgreSQL's data goes.
    rm -rf "$work/postgres"
    echo "check-browser: logs and any screenshot in $work" >&2
  fi
}
trap cleanup EXIT

for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log"; echo "the server did not start" >&2; exit 1; }
  sleep 0.5
done

script="$PWD/scripts/browser/check-docs.cjs"
(cd "$node_dir" && timeout 60 node "$script" "http://127.0.0.1:$port" "$read_token" "$work")
