#!/usr/bin/env bash
# Benchmarks flux-catalog on a generated fleet, beside nginx serving the identical bodies as
# static files (the physical limit of this machine for these responses).
#
#   bench/run.sh M          # fleet-M: 1,000 clusters (about 7 minutes)
#   bench/run.sh L          # fleet-L: 10,000 clusters (about 15 minutes)
#   DURATION=30 CONNECTIONS=64 ROUNDS=5 bench/run.sh M
#
# In-process first (bench/serving.rs): what a request costs computed per request versus
# pre-serialised. Throughput: the server (with its embedded PostgreSQL) and nginx on core 0, wrk on core 1,
# once without and once with Accept-Encoding: gzip. Propagation: the writing server (and
# its PostgreSQL) on core 0, the read-only replica and the measuring client on core 1. Results go to target/bench-<size>/results.json;
# bench/RESULTS.md records them.
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-M}"
duration="${DURATION:-30}"
connections="${CONNECTIONS:-64}"
rounds="${ROUNDS:-5}"
target="${CARGO_TARGET_DIR:-target}"
work="$target/bench-$size"
token=bench-token

for tool in wrk nginx taskset; do
  command -v "$tool" >/dev/null || {
    echo "installing $tool" >&2
    sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get install -y -qq "$( [ "$tool" = taskset ] && echo util-linux || echo "$tool")" >/dev/null
  }
done
scripts/install-deps.sh
cargo build --release --locked --quiet
binary="$(realpath "$target/release/flux-catalog")"

rm -rf "$work"
mkdir -p "$work"
chmod 755 "$work"
work="$(realpath "$work")"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rss_mib() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$1/status"; }

# serve CORES PORT MODE LOG [extra env...]: the release binary, access log off, one worker.
# wrk polls from one address with one token far faster than a fleet: the rate limits still
# run (their cost is in the figures) but with budgets that never refuse.
serve() {
  local cores=$1 port=$2 mode=$3 log=$4 limit=1000000000
  shift 4
  env -u DATABASE_URL API_MODE="$mode" AUTH_TOKEN="$token" LISTEN_ADDR="127.0.0.1:$port" \
    FLUX_CATALOG_HTTP__WORKERS=1 FLUX_CATALOG_DATABASE__EMBEDDED_DATA_DIR="$work/postgres" \
    FLUX_CATALOG_RATE_LIMIT__FLUX_PER_MINUTE=$limit FLUX_CATALOG_RATE_LIMIT__FLUX_BURST=$limit \
    FLUX_CATALOG_RATE_LIMIT__API_PER_MINUTE=$limit FLUX_CATALOG_RATE_LIMIT__API_BURST=$limit \
    RUST_LOG="${SERVER_LOG:-info,flux_catalog::access=warn}" "$@" \
    taskset -c "$cores" "$binary" serve 2>"$log" &
  server_pid=$!
  pids+=("$server_pid")
}

echo "--- fleet-$size: generate and load through the CRUD API" >&2
python3 bench/fleet.py generate --size "$size" > "$work/dataset.json"
python3 bench/fleet.py paths "$work/dataset.json" > "$work/paths.txt"

echo "--- in-process: a response computed per request versus pre-serialised" >&2
cargo bench --locked --quiet --bench serving -- "$work/dataset.json" | tee "$work/serving.txt" >&2
port=$(free_port)
serve 0 "$port" crud "$work/server.log"
writer_pid=$server_pid
python3 bench/fleet.py ready --url "http://127.0.0.1:$port" --timeout 120 >/dev/null
load=$(python3 bench/fleet.py load "$work/dataset.json" --url "http://127.0.0.1:$port" --token "$token")
echo "$load" >&2

echo "--- nginx: the same bodies as static files, and their gzip encodings" >&2
bodies=$(python3 bench/fleet.py export "$work/dataset.json" --url "http://127.0.0.1:$port" --token "$token" --root "$work/www")
echo "$bodies" >&2
nginx_port=$(free_port)
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/json;
  keepalive_requests 1000000;
  gzip_static on;
  client_body_temp_path $work/nginx/tmp;
  server { listen 127.0.0.1:$nginx_port; root $work/www; }
}
NGINX
taskset -c 0 nginx -c "$work/nginx/nginx.conf" &
pids+=($!)
sleep 1

run_wrk() {
  PATHS_FILE="$work/paths.txt" TOKEN="$token" GZIP="$2" taskset -c 1 \
    wrk -t1 -c"$connections" -d"${duration}s" --latency -s bench/random-cluster.lua "$1" | tail -n 1
}
echo "--- wrk: $connections connections, ${duration}s, uniformly random clusters" >&2
nginx_plain=$(run_wrk "http://127.0.0.1:$nginx_port" 0)
echo "nginx:                $nginx_plain" >&2
server_plain=$(run_wrk "http://127.0.0.1:$port" 0)
echo "flux-catalog:         $server_plain" >&2
nginx_gzip=$(run_wrk "http://127.0.0.1:$nginx_port" 1)
echo "nginx, gzip:          $nginx_gzip" >&2
server_gzip=$(run_wrk "http://127.0.0.1:$port" 1)
echo "flux-catalog, gzip:   $server_gzip" >&2
rss_after_load=$(rss_mib "$writer_pid")
echo "resident memory after load: $rss_after_load MiB" >&2

echo "--- propagation to a replica on the other core: a change to every cluster's inputs" >&2
reader_port=$(free_port)
# The crud server runs the embedded PostgreSQL; the replica connects to its socket.
database_url="host=$work/postgres.sock port=5432 user=postgres dbname=flux_catalog"
serve 1 "$reader_port" read-only "$work/reader.log" FLUX_CATALOG_DATABASE__MIGRATE_ON_START=false \
  DATABASE_URL="$database_url"
python3 bench/fleet.py ready --url "http://127.0.0.1:$reader_port" --timeout 120 >/dev/null
propagation=$(taskset -c 1 python3 bench/fleet.py propagation "$work/dataset.json" --rounds "$rounds" \
  --writer "http://127.0.0.1:$port" --reader "http://127.0.0.1:$reader_port" --token "$token")
echo "$propagation" >&2
grep -o 'updated to version [0-9]*: [0-9]* cluster(s) rebuilt, [0-9]* removed, in [0-9]* ms' "$work/reader.log" \
  | tail -n "$rounds" | sed 's/^/reader: /' >&2

# restart CORES LABEL: start-up to ready, with the database already loaded (the embedded
# PostgreSQL's own start included).
startups=()
restart() {
  cleanup
  pids=()
  sleep 1
  local restart_port started ready_s loaded
  restart_port=$(free_port)
  started=$(date +%s.%N)
  serve "$1" "$restart_port" crud "$work/restart-$2.log"
  python3 bench/fleet.py ready --url "http://127.0.0.1:$restart_port" --timeout 120 >/dev/null
  ready_s=$(python3 -c "import time; print(f'{time.time() - $started:.2f}')")
  loaded=$(grep -o 'in [0-9]* ms' "$work/restart-$2.log" | head -n1)
  echo "start-up ($2): ready after ${ready_s}s, snapshot loaded $loaded, $(rss_mib "$server_pid") MiB resident" >&2
  startups+=("\"$2\": {\"ready_seconds\": $ready_s, \"rss_mib\": $(rss_mib "$server_pid")}")
}
echo "--- start-up to ready" >&2
restart 0 one-core
restart 0-1 two-cores

cat > "$work/results.json" <<JSON
{
  "size": "$size",
  "commit": "$(git rev-parse --short HEAD)",
  "machine": "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)",
  "load": "$load",
  "bodies": "$bodies",
  "wrk_settings": {"connections": $connections, "seconds": $duration, "threads": 1},
  "nginx": $nginx_plain,
  "flux_catalog": $server_plain,
  "nginx_gzip": $nginx_gzip,
  "flux_catalog_gzip": $server_gzip,
  "rss_after_load_mib": $rss_after_load,
  "propagation": $propagation,
  "startup": {$(IFS=,; echo "${startups[*]}")}
}
JSON
cat "$work/results.json"
