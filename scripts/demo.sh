#!/usr/bin/env bash
# Installs flowscope, fills ./flowscope.db with synthetic runs, and serves it on 127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/flowscope demo "$@"
