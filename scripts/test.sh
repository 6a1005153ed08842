#!/usr/bin/env bash
# Runs every test: unit and property tests, the integration tests (which start their own
# private PostgreSQL, or use DATABASE_URL when it is set), then the API fuzzing run.
# Arguments go to cargo test; with arguments the fuzzing run is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo test --locked --all-targets "$@"
if [ $# -eq 0 ]; then
  scripts/fuzz.sh
fi
