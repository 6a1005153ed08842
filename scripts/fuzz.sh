#!/usr/bin/env bash
# API fuzzing: schemathesis generates requests from the OpenAPI document of a real server in
# crud mode (demo catalog, its own throw-away PostgreSQL) and fails on any 5xx, any response
# its documentation does not describe, auth that is not enforced, or a crash.
#
#   scripts/fuzz.sh                       # the run CI does: fixed seed, 50 examples per operation
#   FUZZ_EXAMPLES=500 FUZZ_SEED=7 scripts/fuzz.sh   # a deeper or different run
set -euo pipefail
cd "$(dirname "$0")/.."

examples="${FUZZ_EXAMPLES:-50}"
seed="${FUZZ_SEED:-20261123}"
venv="${CARGO_TARGET_DIR:-target}/schemathesis-venv"
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==4.32.5"
fi
cargo build --locked --quiet

work=$(mktemp -d)
# As root, PostgreSQL runs as the postgres user, who must be able to enter it.
chmod 755 "$work"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
read_token="fuzz-read-$RANDOM$RANDOM"
write_token="fuzz-write-$RANDOM$RANDOM"
# Never the caller's DATABASE_URL: fuzzing writes whatever it likes. Rate limits stay on
# (their headers are checked against the document) with budgets that never refuse: the
# default run (about 50 requests a second from one address) fits the defaults, but a deeper
# run or a faster machine must not have requests refused instead of tested.
limit=1000000000
env -u DATABASE_URL API_MODE=crud AUTH_TOKEN="$read_token" CRUD_AUTH_TOKEN="$write_token" \
  LISTEN_ADDR="127.0.0.1:$port" SEED_FILE=demo/catalog.json \
  FLUX_CATALOG_RATE_LIMIT__API_PER_MINUTE=$limit FLUX_CATALOG_RATE_LIMIT__API_BURST=$limit \
  FLUX_CATALOG_RATE_LIMIT__FLUX_PER_MINUTE=$limit FLUX_CATALOG_RATE_LIMIT__FLUX_BURST=$limit \
  FLUX_CATALOG_RATE_LIMIT__ANONYMOUS_PER_MINUTE=$limit FLUX_CATALOG_RATE_LIMIT__ANONYMOUS_BURST=$limit \
  FLUX_CATALOG_DATABASE__EMBEDDED_DATA_DIR="$work/postgres" RUST_LOG=warn \
  "${CARGO_TARGET_DIR:-target}/debug/flux-catalog" serve 2>"$work/server.log" &
server=$!
cleanup() {
  kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log"; echo "the server did not start" >&2; exit 1; }
  sleep 0.5
done

# Every check but the two data-acceptance heuristics: positive_data_acceptance expects every
# schema-valid request to succeed, which semantic rules (references must exist, no cycles,
# If-Match must be current) make impossible; negative_data_rejection expects unknown request
# headers to be refused, which no HTTP service behind a proxy can do. And use_after_free,
# which takes any 200 to a DELETE as a deletion: `DELETE ...?dry_run=true` answers 200 and,
# by design, deletes nothing, so the resource is rightly still there (seen in a stateful
# run: DELETE /clusters/jj?dry_run=true, then GET /clusters/jj 200). That a real delete is
# gone (404, also its Flux endpoints) is asserted by the integration tests.
status=0
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
  --header "Authorization: Bearer $write_token" --header "X-API-Key: $write_token" \
  --checks all --exclude-checks positive_data_acceptance,negative_data_rejection,use_after_free \
  --max-examples "$examples" --seed "$seed" --no-color \
  --report-dir "${CARGO_TARGET_DIR:-target}/schemathesis-report" || status=$?

if ! kill -0 "$server" 2>/dev/null; then
  echo "the server died during fuzzing:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
if grep -q "internal error" "$work/server.log"; then
  echo "the server logged internal errors:" >&2
  grep "internal error" "$work/server.log" >&2
  status=1
fi
exit "$status"
