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

read_token="fuzz-read-$RANDOM$RANDOM"
write_token="fuzz-write-$RANDOM$RANDOM"
# Rate limits stay on (their headers are checked against the document) with budgets that
# never refuse: the default run (about 50 requests a second from one address) fits the
# defaults, but a deeper run or a faster machine must not have requests refused instead of
# tested.
limit=1000000000
source scripts/lib/demo-server.sh
trap 'stop_demo_server; rm -rf "$demo_work"' EXIT
start_demo_server "${CARGO_TARGET_DIR:-target}/debug/flux-catalog" \
  API_MODE=crud AUTH_TOKEN="$read_token" CRUD_AUTH_TOKEN="$write_token" \
  FLUX_CATALOG_RATE_LIMIT__API_PER_MINUTE=$limit FLUX_CATALOG_RATE_LIMIT__API_BURST=$limit \
  FLUX_CATALOG_RATE_LIMIT__FLUX_PER_MINUTE=$limit FLUX_CATALOG_RATE_LIMIT__FLUX_BURST=$limit \
  FLUX_CATALOG_RATE_LIMIT__ANONYMOUS_PER_MINUTE=$limit FLUX_CATALOG_RATE_LIMIT__ANONYMOUS_BURST=$limit

# Every check but the two data-acceptance heuristics: positive_data_acceptance expects every
# schema-valid request to succeed, which semantic rules (references must exist, no cycles,
# If-Match must be current) make impossible; negative_data_rejection expects unknown request
# headers to be refused, which no HTTP service behind a proxy can do. And use_after_free,
# which takes any 200 to a DELETE as a deletion: `DELETE ...?dry_run=true` answers 200 and,
# by design, deletes nothing, so the resource is rightly still there (seen in a stateful
# run: DELETE /clusters/jj?dry_run=true, then GET /clusters/jj 200). That a real delete is
# gone (404, also its Flux endpoints) is asserted by the integration tests.
status=0
"$venv/bin/schemathesis" run "$demo_url/openapi.json" \
  --header "Authorization: Bearer $write_token" --header "X-API-Key: $write_token" \
  --checks all --exclude-checks positive_data_acceptance,negative_data_rejection,use_after_free \
  --max-examples "$examples" --seed "$seed" --no-color \
  --report-dir "${CARGO_TARGET_DIR:-target}/schemathesis-report" || status=$?

if ! kill -0 "$demo_pid" 2>/dev/null; then
  echo "the server died during fuzzing:" >&2
  cat "$demo_work/server.log" >&2
  exit 1
fi
if grep -q "internal error" "$demo_work/server.log"; then
  echo "the server logged internal errors:" >&2
  grep "internal error" "$demo_work/server.log" >&2
  status=1
fi
exit "$status"
