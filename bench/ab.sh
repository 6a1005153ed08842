#!/usr/bin/env bash
# Compares the Flux read path of two builds side by side, in one run: each serves the demo
# catalog from its own embedded PostgreSQL on core 0 while wrk on core 1 asks for one
# cluster's platform components; rounds alternate so the machine's drift hits both.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY          # e.g. a release build of main~5 and of main
#   DURATION=10 ROUNDS=3 CONNECTIONS=32 bench/ab.sh A B
#
# Prints requests per second per round and the ratio of the medians (NEW / OLD).
set -euo pipefail
cd "$(dirname "$0")/.."
old=$(realpath "$1")
new=$(realpath "$2")
duration="${DURATION:-10}"
rounds="${ROUNDS:-3}"
connections="${CONNECTIONS:-32}"
token=ab-token
path=/api/v2/flux/clusters/demo-prod-01.k8s.example.com/platform-components
command -v wrk >/dev/null || { echo "bench/ab.sh needs wrk (apt-get install -y wrk)" >&2; exit 1; }
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start() {  # NAME BINARY -> port in $work/NAME.port
  local name=$1 binary=$2 port
  port=$(free_port)
  env -u DATABASE_URL API_MODE=read-only AUTH_TOKEN="$token" LISTEN_ADDR="127.0.0.1:$port" \
    FLUX_CATALOG_HTTP__WORKERS=1 SEED_FILE=demo/catalog.json \
    FLUX_CATALOG_DATABASE__EMBEDDED_DATA_DIR="$work/$name-pg" RUST_LOG=warn \
    taskset -c 0 "$binary" serve 2>"$work/$name.log" &
  pids+=($!)
  for _ in $(seq 600); do
    if curl -fs "http://127.0.0.1:$port/ready" >/dev/null 2>&1; then echo "$port" >"$work/$name.port"; return; fi
    sleep 0.1
  done
  echo "$name did not become ready:" >&2; cat "$work/$name.log" >&2; exit 1
}
start old "$old"
start new "$new"

rps() {  # PORT -> requests per second
  taskset -c 1 wrk -t1 -c"$connections" -d"${duration}s" -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$1$path" | awk '/Requests\/sec/ {print $2}'
}
declare -a old_runs new_runs
for round in $(seq "$rounds"); do
  o=$(rps "$(cat "$work/old.port")"); n=$(rps "$(cat "$work/new.port")")
  old_runs+=("$o"); new_runs+=("$n")
  echo "round $round: old $o req/s, new $n req/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mo=$(median "${old_runs[@]}"); mn=$(median "${new_runs[@]}")
echo "median: old $mo req/s, new $mn req/s, new/old $(python3 -c "print(f'{$mn/$mo:.3f}')")"
