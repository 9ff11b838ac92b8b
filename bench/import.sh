#!/usr/bin/env bash
# Store import throughput; see bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/import.py "$@"
