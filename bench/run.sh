#!/usr/bin/env bash
# Benchmarks flux-catalog on a generated fleet, beside nginx serving the identical bodies as
# static files (the physical limit of this machine for these responses).
#
#   bench/run.sh M          # fleet-M: 1,000 clusters (about 5 minutes)
#   bench/run.sh L          # fleet-L: 10,000 clusters
#   DURATION=30 CONNECTIONS=64 bench/run.sh M
#
# The server and nginx are pinned to core 0, wrk to core 1 (taskset). Results go to
# target/bench-<size>/results.json; bench/RESULTS.md records them.
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-M}"
duration="${DURATION:-30}"
connections="${CONNECTIONS:-64}"
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

# serve PORT MODE LOG [extra env...]: the release binary on core 0, access log off.
serve() {
  local port=$1 mode=$2 log=$3
  shift 3
  env -u DATABASE_URL API_MODE="$mode" AUTH_TOKEN="$token" LISTEN_ADDR="127.0.0.1:$port" \
    FLUX_CATALOG_HTTP__WORKERS=1 FLUX_CATALOG_DATABASE__EMBEDDED_DATA_DIR="$work/postgres" \
    RUST_LOG="${SERVER_LOG:-info,flux_catalog::access=warn}" "$@" \
    taskset -c 0 "$binary" serve 2>"$log" &
  pids+=($!)
}

echo "--- fleet-$size: generate and load through the CRUD API" >&2
python3 bench/fleet.py generate --size "$size" > "$work/dataset.json"
python3 bench/fleet.py paths "$work/dataset.json" > "$work/paths.txt"
port=$(free_port)
serve "$port" crud "$work/server.log"
python3 bench/fleet.py ready --url "http://127.0.0.1:$port" --timeout 120 >/dev/null
load=$(python3 bench/fleet.py load "$work/dataset.json" --url "http://127.0.0.1:$port" --token "$token")
echo "$load" >&2

echo "--- nginx: the same bodies as static files" >&2
body=$(python3 bench/fleet.py export "$work/dataset.json" --url "http://127.0.0.1:$port" --token "$token" --root "$work/www")
echo "$body" >&2
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
  client_body_temp_path $work/nginx/tmp;
  server { listen 127.0.0.1:$nginx_port; root $work/www; }
}
NGINX
taskset -c 0 nginx -c "$work/nginx/nginx.conf" &
pids+=($!)
sleep 1

run_wrk() {
  PATHS_FILE="$work/paths.txt" TOKEN="$token" taskset -c 1 \
    wrk -t1 -c"$connections" -d"${duration}s" --latency -s bench/random-cluster.lua "$1" | tail -n 1
}
echo "--- wrk: $connections connections, ${duration}s, uniformly random clusters" >&2
nginx_result=$(run_wrk "http://127.0.0.1:$nginx_port")
echo "nginx:        $nginx_result" >&2
server_result=$(run_wrk "http://127.0.0.1:$port")
echo "flux-catalog: $server_result" >&2
rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$(pgrep -f "$binary serve" | head -n1)/status")
echo "resident memory after load: $((rss_kib / 1024)) MiB" >&2

echo "--- propagation to a second replica: a change to every cluster's inputs" >&2
reader_port=$(free_port)
# The crud server runs the embedded PostgreSQL; the replica connects to its socket.
database_url="host=$work/postgres.sock port=5432 user=postgres dbname=flux_catalog"
serve "$reader_port" read-only "$work/reader.log" FLUX_CATALOG_DATABASE__MIGRATE_ON_START=false \
  DATABASE_URL="$database_url"
python3 bench/fleet.py ready --url "http://127.0.0.1:$reader_port" --timeout 120 >/dev/null
propagation=$(python3 bench/fleet.py propagation "$work/dataset.json" \
  --writer "http://127.0.0.1:$port" --reader "http://127.0.0.1:$reader_port" --token "$token")
echo "$propagation" >&2
reader_applied=$(grep -o 'rebuilt, [0-9]* removed, in [0-9]* ms' "$work/reader.log" | tail -n1)
echo "reader log: $reader_applied" >&2

echo "--- start-up to ready, with the database already loaded (embedded PostgreSQL start included)" >&2
cleanup
pids=()
sleep 1
restart_port=$(free_port)
started=$(date +%s.%N)
serve "$restart_port" crud "$work/restart.log"
ready_after=$(python3 bench/fleet.py ready --url "http://127.0.0.1:$restart_port" --timeout 120)
startup=$(python3 -c "import time; print(f'{time.time() - $started:.2f}')")
echo "ready after ${startup}s (snapshot load: $(grep -o 'loaded to version [0-9]*: [0-9]* cluster(s) rebuilt, 0 removed, in [0-9]* ms' "$work/restart.log"))" >&2
rss_after_start=$(awk '/VmRSS/ {print $2}' "/proc/$(pgrep -f "$binary serve" | head -n1)/status")

cat > "$work/results.json" <<JSON
{
  "size": "$size",
  "load": "$load",
  "bodies": "$body",
  "wrk_settings": {"connections": $connections, "seconds": $duration, "threads": 1},
  "nginx": $nginx_result,
  "flux_catalog": $server_result,
  "rss_after_load_mib": $((rss_kib / 1024)),
  "propagation": $propagation,
  "reader_log": "$reader_applied",
  "startup_to_ready_seconds": $startup,
  "rss_after_restart_mib": $((rss_after_start / 1024))
}
JSON
cat "$work/results.json"
