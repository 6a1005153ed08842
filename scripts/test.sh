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
scripts/install-deps.sh
if [ $# -gt 0 ]; then
  exec cargo test --locked "$@"
fi
# Each step says how long it took, to keep the whole run within CI's budget.
timed() {
  local started=$SECONDS
  "$@"
  echo "--- $*: $((SECONDS - started)) s"
}
timed cargo test --locked --workspace --all-targets
timed scripts/fuzz.sh
timed scripts/check-chart.sh
timed scripts/check-flux-examples.sh
timed scripts/check-browser.sh
