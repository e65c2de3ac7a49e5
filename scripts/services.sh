#!/usr/bin/env bash
# Makes sure the Redis and Postgres that skillserve uses answer on 127.0.0.1, starting the
# machine's own servers when they are down. Idempotent: does nothing when both answer.
set -euo pipefail

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! redis_up; then
  echo "services: starting Redis…"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 50); do redis_up && break; sleep 0.1; done
  redis_up || { echo "services: Redis did not start; see /var/log/redis/ci.log" >&2; exit 1; }
fi

if ! pg_up; then
  echo "services: starting Postgres…"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 100); do pg_up && break; sleep 0.1; done
  pg_up || { echo "services: Postgres did not start" >&2; exit 1; }
fi
