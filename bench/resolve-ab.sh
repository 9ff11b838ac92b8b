#!/usr/bin/env bash
# Resolution time with warm metadata and no lockfile, two hoard builds side by side (interleaved),
# on a corpus project from the live registry: the figure issue #9 asks to keep within 10%.
#
#   bench/resolve-ab.sh OLD_HOARD NEW_HOARD [project] [runs]
#   e.g. bench/resolve-ab.sh /tmp/old/target/release/hoard target/release/hoard create-react-app 7
#
# Each build gets its own store; one install warms it, then each run moves node_modules aside,
# deletes package-lock.json and reads `resolve N ms` from `hoard install --verbose`. Prints the
# runs and the medians.
set -euo pipefail
OLD=$1 NEW=$2 P=${3:-create-react-app} N=${4:-7}
W=$(mktemp -d)
trap 'for t in old new; do "$NEW" --store-dir "$W/store-$t" daemon stop >/dev/null 2>&1 || true; done' EXIT
SRC="$(cd "$(dirname "$0")/.." && pwd)/tests/corpus/projects/$P/package.json"
for t in old new; do
  bin=$OLD; [ $t = new ] && bin=$NEW
  mkdir -p "$W/$t"; cp "$SRC" "$W/$t/"
  "$bin" --store-dir "$W/store-$t" -C "$W/$t" install --ignore-scripts >/dev/null
done
for i in $(seq "$N"); do
  for t in old new; do
    bin=$OLD; [ $t = new ] && bin=$NEW
    mv "$W/$t/node_modules" "$W/trash-$t-$i"; rm -f "$W/$t/package-lock.json"
    ms=$("$bin" --store-dir "$W/store-$t" -C "$W/$t" install --ignore-scripts --verbose 2>&1 \
      | grep -oE 'resolve [0-9]+ ms' | grep -oE '[0-9]+')
    echo "$t $ms"
  done
done | tee "$W/runs.txt"
python3 - "$W/runs.txt" <<'PY'
import statistics, sys
d = {"old": [], "new": []}
for line in open(sys.argv[1]):
    t, v = line.split()
    d[t].append(int(v))
o, n = statistics.median(d["old"]), statistics.median(d["new"])
print(f"median resolve: old {o} ms, new {n} ms, new/old {n / o:.2f}")
PY
