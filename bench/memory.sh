#!/usr/bin/env bash
# hoardd's resident memory over a sequence of cold installs. See bench/memory.py --help.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/memory.py "$@"
