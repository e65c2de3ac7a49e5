#!/usr/bin/env bash
# Installs what skillserve needs and is missing; quick and silent when everything is there.
#   npm dependencies (npm ci when node_modules is missing or older than package-lock.json),
#   the onnx skill's example models in models/ (generated, not in git: the MLP is ~139 MB),
#   nginx from Debian (the cluster runs its own nginx instance; the system one is left alone),
#   openssl (TLS=on makes a self-signed certificate), and for the offline checks of the deployment
#   files: docker-compose (parses docker-compose-ml.yml without an engine) and promtool (prometheus),
#   wrk from Debian when `--bench` is given.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "setup: $* missing; install it with: sudo apt-get install -y $*" >&2
    exit 1
  fi
  echo "setup: installing $* from Debian…"
  if [ ! -f /var/lib/apt/periodic/skillserve-updated ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]; then
    apt-get update -qq
    mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/skillserve-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies (npm ci)…"
  npm ci --no-audit --no-fund --loglevel=error
fi

# Regenerated when missing or when the generator changed; the output is byte-identical each run.
stamp=models/.generated
if [ ! -f "$stamp" ] || [ ! -f models/mlp/1/model.onnx ] || [ ! -f models/classifier/1/model.onnx ] ||
  [ -n "$(find scripts/generate-models.ts scripts/models -newer "$stamp" 2>/dev/null | head -n1)" ]; then
  node --import tsx scripts/generate-models.ts models
  touch "$stamp"
fi

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  apt_install nginx-light
fi

missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}"
fi

if [ "${1:-}" = "--bench" ] && ! command -v wrk >/dev/null 2>&1; then
  apt_install wrk
fi
