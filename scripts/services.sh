#!/usr/bin/env bash
# Makes sure the local PostgreSQL and Redis the tests use are up, starting them when they are
# installed but stopped. Tests decide what a missing service means (CI=true: a failure).
set -uo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if command -v pg_isready >/dev/null && ! pg_up && command -v pg_ctlcluster >/dev/null; then
  echo "starting PostgreSQL"
  for version in $(ls /etc/postgresql 2>/dev/null); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
fi
if command -v redis-server >/dev/null && ! redis_up; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  for _ in $(seq 1 30); do redis_up && break; sleep 0.2; done
fi
pg_up && echo "PostgreSQL: up on 127.0.0.1:5432" || echo "PostgreSQL: not reachable"
redis_up && echo "Redis: up on 127.0.0.1:6379" || echo "Redis: not reachable"
exit 0
