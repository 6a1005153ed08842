#!/usr/bin/env bash
# Runs every test: unit tests, property tests, and the integration tests, which start their
# own private PostgreSQL (or use DATABASE_URL when it is set).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo test --locked --all-targets "$@"
