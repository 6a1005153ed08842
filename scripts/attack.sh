#!/usr/bin/env bash
# Replays the memory and starvation attacks of issue 11 against a release build (crud mode,
# demo catalog, its own throw-away PostgreSQL) and prints resident memory before, during and
# after each one, and how reads and /ready fared during the write burst. Figures are in
# bench/RESULTS.md ("Hostile clients").
#
#   scripts/attack.sh                         # every attack, about 3 minutes
#   scripts/attack.sh nonreading writers      # some of them (see bench/attack.py --help)
#   ATTACK_ENV="FLUX_CATALOG_HTTP__MAX_CONNECTIONS=100" scripts/attack.sh nonreading
#   ATTACK_BINARY=/path/to/flux-catalog scripts/attack.sh     # another build, e.g. an older one
#   ATTACK_ARGS="--connections 600" scripts/attack.sh nonreading   # options of bench/attack.py
#
# Not part of scripts/test.sh: it is a drill that takes minutes and pushes the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
binary=${ATTACK_BINARY:-$(scripts/build-release.sh --quiet | tail -n 1)}

read_token="attack-read-$RANDOM$RANDOM"
write_token="attack-write-$RANDOM$RANDOM"
# Many connections at once: the client side needs the descriptors too.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "release binary $binary, commit $(git rev-parse --short HEAD)" >&2

# Each attack on a fresh server, so that none inherits what another left behind.
attacks=("$@")
[ ${#attacks[@]} -gt 0 ] || attacks=(nonreading slowbody bigbodies writers)
source scripts/lib/demo-server.sh
trap 'stop_demo_server; rm -rf "${demo_work:-}"' EXIT
for attack in "${attacks[@]}"; do
  # MALLOC_MMAP_THRESHOLD_ as the container image sets it (Dockerfile).
  # shellcheck disable=SC2086
  start_demo_server "$binary" MALLOC_MMAP_THRESHOLD_=65536 API_MODE=crud \
    AUTH_TOKEN="$read_token" CRUD_AUTH_TOKEN="$write_token" ${ATTACK_ENV:-}
  # shellcheck disable=SC2086
  python3 bench/attack.py --url "$demo_url" --pid "$demo_pid" \
    --read-token "$read_token" --write-token "$write_token" ${ATTACK_ARGS:-} "$attack"
  if ! kill -0 "$demo_pid" 2>/dev/null; then
    echo "the server died during $attack:" >&2
    tail -n 50 "$demo_work/server.log" >&2
    exit 1
  fi
  stop_demo_server
  rm -rf "$demo_work"
done
