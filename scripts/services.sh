#!/usr/bin/env bash
# Makes sure the Redis and Postgres that skillserve uses answer on 127.0.0.1, starting the
# machine's own servers when they are down. Idempotent: does nothing when both answer.
#
# Redis is started with the project's redis/redis.conf (AOF on: a restart keeps accepted jobs),
# its data in a directory the project owns (SKILLSERVE_REDIS_DIR, by default .run/redis in this
# checkout). A Redis that is already running is left as it is: `skillserve up` checks its
# persistence and refuses (or warns, with REDIS_PERSISTENCE=warn) when it is off.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! redis_up; then
  data="${SKILLSERVE_REDIS_DIR:-$root/.run/redis}"
  echo "services: starting Redis (AOF, data in $data)…"
  mkdir -p "$data"
  redis-server "$root/redis/redis.conf" --daemonize yes --bind 127.0.0.1 -::1 --port 6379 \
    --dir "$data" --logfile "$data/redis.log"
  # With AOF, a restart replays the file first: LOADING until it is read.
  for _ in $(seq 1 300); do redis_up && break; sleep 0.1; done
  redis_up || { echo "services: Redis did not start; see $data/redis.log" >&2; exit 1; }
fi

if ! pg_up; then
  echo "services: starting Postgres…"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 100); do pg_up && break; sleep 0.1; done
  pg_up || { echo "services: Postgres did not start" >&2; exit 1; }
fi
