#!/usr/bin/env bash
# The release build of the flux-catalog binary: what the container image ships and what CI
# builds, with the same command so the image holds exactly what CI tested.
#
#   scripts/build-release.sh        # -> ${CARGO_TARGET_DIR:-target}/release/flux-catalog
#
# Honours CARGO_TARGET_DIR (relative paths are taken from the repository root) and passes
# any arguments on to cargo (e.g. --quiet). Prints the binary's path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin flux-catalog "$@"
target="${CARGO_TARGET_DIR:-target}"
binary="$target/release/flux-catalog"
if [ ! -x "$binary" ]; then
  echo "build-release.sh: cargo finished but $binary is missing" >&2
  exit 1
fi
echo "$binary"
