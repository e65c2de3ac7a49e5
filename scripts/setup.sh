#!/usr/bin/env bash
# Installs what skillserve needs and is missing; quick and silent when everything is there.
#   npm dependencies (npm ci when node_modules is missing or older than package-lock.json),
#   the onnx skill's example models in models/ (generated, not in git: the MLP is ~139 MB in FP32,
#   ~240 MB with its FP16 and INT8 variants),
#   nginx from Debian (the cluster runs its own nginx instance; the system one is left alone),
#   Prometheus (with promtool), Alertmanager (with amtool) and the nginx, Redis and Postgres
#   exporters from Debian, which `up` runs as its own children (the packages' system services are
#   not started),
#   openssl (TLS=on makes a self-signed certificate), docker-compose (parses docker-compose-ml.yml
#   without an engine, for the offline checks of the deployment files),
#   Locust from Debian (python3-locust) for the load tests (npm run loadtest, and its smoke profile in npm test),
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
if [ ! -f "$stamp" ] || [ ! -f models/mlp/1/model.onnx ] || [ ! -f models/mlp/1/model.int8.onnx ] ||
  [ ! -f models/mlp/1/model.fp16.onnx ] || [ ! -f models/classifier/1/model.onnx ] ||
  [ ! -f models/embedder/1/model.int8.onnx ] ||
  [ -n "$(find scripts/generate-models.ts scripts/models -newer "$stamp" 2>/dev/null | head -n1)" ]; then
  node --import tsx scripts/generate-models.ts models
  touch "$stamp"
fi

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  apt_install nginx-light
fi

# Installed without starting the packages' own services (policy-rc.d says no), which would take
# the ports `up` uses; `up` runs its own instances.
missing=()
for bin in prometheus promtool prometheus-alertmanager amtool prometheus-nginx-exporter prometheus-redis-exporter \
  prometheus-postgres-exporter openssl docker-compose; do
  command -v "$bin" >/dev/null 2>&1 && continue
  case "$bin" in
  promtool) missing+=(prometheus) ;;
  amtool) missing+=(prometheus-alertmanager) ;;
  *) missing+=("$bin") ;;
  esac
done
command -v locust >/dev/null 2>&1 || [ -x /usr/bin/locust ] || missing+=(python3-locust)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt_install $(printf '%s\n' "${missing[@]}" | sort -u)
fi

if [ "${1:-}" = "--bench" ] && ! command -v wrk >/dev/null 2>&1; then
  apt_install wrk
fi
