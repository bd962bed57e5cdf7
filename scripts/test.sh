#!/usr/bin/env bash
# The whole test suite: installs what it needs, starts local services, then lint, types, tests.
# SQLite always; PostgreSQL (and Redis) when reachable, and required when CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/services.sh

echo "== ruff"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "== mypy"
.venv/bin/mypy
echo "== import layers"
.venv/bin/lint-imports --no-cache
echo "== pytest"
.venv/bin/pytest "$@"
