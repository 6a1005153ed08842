#!/usr/bin/env bash
# Offline checks of the Helm chart (helm/flux-catalog) and the image's build files: lints and
# renders the chart like `helm lint` / `helm template` for the default values, every
# helm/flux-catalog/ci/*.yaml file and more combinations (both database modes), validates
# every rendered object (Kubernetes' schemas; CloudNativePG's Cluster against its CRD), and
# asserts what the chart promises: restrictive security contexts, secrets only from Secrets,
# a migration hook Job, probes, shutdown timing... (scripts/chart/check_chart.py).
#
# Needs only python3 (3.11 or later); no helm binary and no cluster. The checking tools live in
# a venv under ${CARGO_TARGET_DIR:-target}/chart-venv, made once and kept (about 400 MB,
# mostly Helm's engine). CustomResourceDefinitions are read from scripts/crds, or from
# FLUX_CATALOG_CRDS_DIR.
#
# Ends with "N passed, 0 failed"; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "check-chart.sh needs python3 3.11 or later (tomllib)" >&2
  exit 1
fi
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  # As scripts/install-deps.sh does: Debian's python3 comes without venv.
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "check-chart.sh: python3's venv module is missing: install python3-venv" >&2
    exit 1
  fi
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  echo "installing python3-venv..." >&2
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq python3-venv >/dev/null
fi

venv="${CARGO_TARGET_DIR:-target}/chart-venv"
requirements=scripts/chart/requirements.txt
stamp="$venv/requirements.sha256"
wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "creating $venv (helm-python-sdk, kubernetes-validate, jsonschema)..." >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  echo "$wanted" >"$stamp"
fi

crds="${FLUX_CATALOG_CRDS_DIR:-$repo/scripts/crds}"
# No __pycache__ in the source tree.
PYTHONDONTWRITEBYTECODE=1 exec "$venv/bin/python" scripts/chart/check_chart.py --crds "$crds"
