# Sourced by the scripts that check a running server (fuzz.sh, check-flux-examples.sh,
# check-browser.sh, attack.sh): starts one on the demo catalog with its own throw-away
# embedded PostgreSQL, never the caller's DATABASE_URL (the checks write into it).
#
#   start_demo_server BINARY [VARIABLE=VALUE ...]   # the settings (API_MODE, tokens...)
#       sets demo_url, demo_pid, demo_work (a temporary directory; server.log is in it)
#   stop_demo_server                                # stops it and waits for it to exit
#
# The caller removes demo_work (or keeps it, to show its logs after a failure).

start_demo_server() {
  local binary=$1
  shift
  demo_work=$(mktemp -d)
  # As root, PostgreSQL runs as the postgres user, who must be able to enter it.
  chmod 755 "$demo_work"
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  demo_url="http://127.0.0.1:$port"
  env -u DATABASE_URL LISTEN_ADDR="127.0.0.1:$port" SEED_FILE=demo/catalog.json \
    FLUX_CATALOG_DATABASE__EMBEDDED_DATA_DIR="$demo_work/postgres" RUST_LOG=warn "$@" \
    "$binary" serve 2>"$demo_work/server.log" &
  demo_pid=$!
  for _ in $(seq 1 120); do
    curl -sf "$demo_url/ready" >/dev/null && return 0
    if ! kill -0 "$demo_pid" 2>/dev/null; then
      cat "$demo_work/server.log" >&2
      echo "the server did not start" >&2
      return 1
    fi
    sleep 0.5
  done
  cat "$demo_work/server.log" >&2
  echo "the server was not ready within 60 s" >&2
  return 1
}

stop_demo_server() {
  if [ -n "${demo_pid:-}" ]; then
    kill "$demo_pid" 2>/dev/null && wait "$demo_pid" 2>/dev/null
    demo_pid=
  fi
  return 0
}
