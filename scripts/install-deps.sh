#!/usr/bin/env bash
# Makes sure this machine has what flux-catalog and its tests need beyond Rust, installing
# Debian's packages when something is missing:
#
#   scripts/install-deps.sh            # to run the service: the PostgreSQL server binaries
#                                      # (initdb, postgres), from which it starts its own
#                                      # private server, and curl
#   scripts/install-deps.sh tests      # also Python with venv, in which the API fuzzer and
#                                      # the checking tools are installed, and Go with the three
#                                      # libraries scripts/flux-render is built from offline
#                                      # (GOPATH mode: the Go module proxy is not reachable)
#   scripts/install-deps.sh browser    # also Chromium and Node.js, for scripts/check-browser.sh
#   scripts/install-deps.sh tests browser
set -euo pipefail

have_postgres() {
  if command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1; then
    return 0
  fi
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

missing=()
have_postgres || missing+=(postgresql)
command -v curl >/dev/null 2>&1 || missing+=(curl)
for group in "$@"; do
  case "$group" in
    tests)
      python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3 python3-venv)
      command -v go >/dev/null 2>&1 || missing+=(golang-go)
      [ -d /usr/share/gocode/src/github.com/Masterminds/sprig ] || missing+=(golang-github-masterminds-sprig-dev)
      [ -d /usr/share/gocode/src/sigs.k8s.io/yaml ] || missing+=(golang-k8s-sigs-yaml-dev)
      [ -d /usr/share/gocode/src/github.com/rainycape/unidecode ] || missing+=(golang-github-rainycape-unidecode-dev)
      ;;
    browser)
      command -v chromium >/dev/null 2>&1 || missing+=(chromium)
      { command -v node && command -v npm; } >/dev/null 2>&1 || missing+=(nodejs npm)
      ;;
    *)
      echo "install-deps.sh: unknown group $group (tests, browser)" >&2
      exit 2
      ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing ${missing[*]}..." >&2
if ! command -v apt-get >/dev/null 2>&1; then
  echo "No apt-get here: install ${missing[*]} with your package manager" >&2
  echo "(for PostgreSQL, the server: initdb and postgres), or set DATABASE_URL." >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "Installing needs root: run 'apt-get install -y ${missing[*]}' as root, then try again." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
have_postgres || { echo "postgresql was installed but initdb was not found" >&2; exit 1; }
