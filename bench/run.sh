#!/usr/bin/env bash
# hoard vs npm, pnpm and bun on this machine. See bench/README.md; options: bench/run.py --help.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/run.py "$@"
