#!/usr/bin/env bash
# The test command (README; .ci/run calls exactly this). Installs what the tests need when it
# can (xfsprogs, for the reflink test on a loop-mounted XFS; exfat-fuse, for a case-insensitive
# filesystem where the kernel has no ext4 casefold; redis-server, for the team cache;
# chromium, for the dashboard's browser test; git, for the git dependency tests),
# runs `cargo test --locked`, then
# prints which tests could not run here and why: a skip is never counted as a pass.
set -euo pipefail
cd "$(dirname "$0")/.."
# install <packages> <why> <what happens without them>: apt-get install, as root, where apt is.
install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || { echo "tests/run.sh: $3"; return; }
  echo "tests/run.sh: installing $1 ($2)"
  # shellcheck disable=SC2086
  (apt-get install -y -qq $1 >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $1 >/dev/null 2>&1; }) ||
    echo "tests/run.sh: could not install $1; $3"
}
command -v mkfs.xfs >/dev/null 2>&1 ||
  install xfsprogs "the reflink test needs mkfs.xfs" \
    "the reflink test will be reported as skipped"
command -v mount.exfat-fuse >/dev/null 2>&1 ||
  install "exfat-fuse exfatprogs" "a case-insensitive filesystem for the case test" \
    "the case test tries ext4 casefold alone"
command -v redis-server >/dev/null 2>&1 ||
  install redis-server "the team cache tests start one on 127.0.0.1" \
    "the team cache tests will be reported as skipped"
{ command -v chromium || command -v chromium-browser || command -v google-chrome; } >/dev/null 2>&1 ||
  install chromium "the dashboard test drives it headless" \
    "the dashboard's browser test will be reported as skipped"
command -v git >/dev/null 2>&1 ||
  install git "git dependencies are tested against a git daemon on 127.0.0.1" \
    "the git dependency tests will be reported as skipped"
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
