#!/usr/bin/env bash
# The test command (README; .ci/run calls exactly this). Installs what the tests need when it
# can (xfsprogs, for the reflink test on a loop-mounted XFS; exfat-fuse, for a case-insensitive
# filesystem where the kernel has no ext4 casefold; redis-server, for the team cache;
# chromium, for the dashboard's browser test),
# runs `cargo test --locked`, then
# prints which tests could not run here and why: a skip is never counted as a pass.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v mkfs.xfs >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "tests/run.sh: installing xfsprogs (the reflink test needs mkfs.xfs)"
  (apt-get install -y -qq xfsprogs >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq xfsprogs >/dev/null 2>&1; }) ||
    echo "tests/run.sh: could not install xfsprogs; the reflink test will be reported as skipped"
fi
if ! command -v mount.exfat-fuse >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "tests/run.sh: installing exfat-fuse and exfatprogs (a case-insensitive filesystem for the case test)"
  (apt-get install -y -qq exfat-fuse exfatprogs >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq exfat-fuse exfatprogs >/dev/null 2>&1; }) ||
    echo "tests/run.sh: could not install exfat-fuse; the case test tries ext4 casefold alone"
fi
if ! command -v redis-server >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "tests/run.sh: installing redis-server (the team cache tests start one on 127.0.0.1)"
  (apt-get install -y -qq redis-server >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq redis-server >/dev/null 2>&1; }) ||
    echo "tests/run.sh: could not install redis-server; the team cache tests will be reported as skipped"
fi
if ! { command -v chromium || command -v chromium-browser || command -v google-chrome; } >/dev/null 2>&1 &&
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "tests/run.sh: installing chromium (the dashboard test drives it headless)"
  (apt-get install -y -qq chromium >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }) ||
    echo "tests/run.sh: could not install chromium; the dashboard's browser test will be reported as skipped"
fi
skips="${CARGO_TARGET_DIR:-target}/tmp/skipped"
rm -rf "$skips"
status=0
cargo test --locked "$@" || status=$?
# macOS and Windows compile too (issue #23): cargo check --bins --tests for both Apple targets
# and x86_64-pc-windows-gnu, Zig as the C compiler.
if [ $# -eq 0 ]; then
  if command -v rustup >/dev/null 2>&1; then
    .ci/cross-check x86_64-apple-darwin aarch64-apple-darwin x86_64-pc-windows-gnu || status=$?
  else
    mkdir -p "$skips"
    echo "rustup is not installed, so the macOS and Windows targets cannot be added" >"$skips/cross-check-targets"
  fi
fi
if [ -d "$skips" ] && [ -n "$(ls -A "$skips")" ]; then
  echo
  echo "SKIPPED: $(ls "$skips" | wc -l) test(s) could not run on this machine (not passes):"
  for f in "$skips"/*; do
    echo "  $(basename "$f"): $(cat "$f")"
  done
else
  echo "tests/run.sh: no test was skipped"
fi
artifacts="${CARGO_TARGET_DIR:-target}/tmp/artifacts"
if [ -d "$artifacts" ] && [ -n "$(ls -A "$artifacts")" ]; then
  echo "tests/run.sh: screenshots from the browser tests are in $artifacts"
fi
exit "$status"
