#!/usr/bin/env bash
# Runs every test: unit and property tests of every crate in the workspace, the integration
# tests (which start their own private PostgreSQL, or use DATABASE_URL when it is set), the
# API fuzzing run, the offline checks of the Helm chart, the check that the Flux examples
# render and validate against real responses, and the API browser in a headless chromium.
#
#   scripts/test.sh                      # everything
#   scripts/test.sh --test api flux      # arguments narrow the run: they go to cargo test alone
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then
  scripts/install-deps.sh
  exec cargo test --locked "$@"
fi
# Everything first, so that the checks below, which run side by side, never install at once.
scripts/install-deps.sh tests browser
# Each step says how long it took, to keep the whole run within CI's budget.
timed() {
  local started=$SECONDS
  "$@"
  echo "--- $*: $((SECONDS - started)) s"
}
timed cargo test --locked --workspace --all-targets

# The checks of a running server each start their own (free port, own PostgreSQL) and build
# nothing the tests did not, so they run side by side: on two cores, the chart, Flux and
# browser checks fit beside fuzzing, the longest. Each one's output is shown whole when it
# ends; the run fails if any failed.
checks=(fuzz.sh check-chart.sh check-flux-examples.sh check-browser.sh)
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
started=$SECONDS
pids=()
for check in "${checks[@]}"; do
  (timed "scripts/$check" >"$logs/$check.log" 2>&1) &
  pids+=($!)
done
failed=()
for i in "${!checks[@]}"; do
  status=0
  wait "${pids[$i]}" || status=$?
  echo "=== scripts/${checks[$i]}"
  cat "$logs/${checks[$i]}.log"
  [ "$status" -eq 0 ] || failed+=("${checks[$i]}")
done
echo "--- checks side by side: $((SECONDS - started)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
