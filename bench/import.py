#!/usr/bin/env python3
"""Store import throughput and hoardd's peak RSS while importing a ~1,000-package tree.

Uses the local mirror (bench/mirror.py, warmed by bench/run.sh or by this script's first pass)
and the fixture's lockfile, so the timed install does no resolution: the fetch phase is
download from 127.0.0.1 + verify + gunzip + untar + BLAKE3 + write + index. The mirror's files
are read once beforehand so they come from the page cache.

    bench/import.sh [--fixture alotta-files] [--runs 3]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402

HOARD = os.path.join(bench.ROOT, "target", "release", "hoard")


def hoard(env, cwd, *args):
    r = subprocess.run([HOARD, *args], cwd=cwd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixture", default="alotta-files")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=bench.ROOT, check=True)
    mirror = bench.start_mirror(argparse.Namespace(latency_ms=0, kbps=0))
    base = os.path.join(bench.WORK, "import")
    shutil.rmtree(base, ignore_errors=True)
    proj = os.path.join(base, "project")
    os.makedirs(proj)
    shutil.copy(os.path.join(bench.HERE, "fixtures", a.fixture, "package.json"), proj)
    rows = []
    try:
        for i in range(a.runs + 1):
            store = os.path.join(base, f"store{i}")
            env = {"PATH": os.environ["PATH"], "HOME": base, "HOARD_STORE_DIR": store,
                   "XDG_RUNTIME_DIR": os.path.join(base, "run"), "npm_config_registry": bench.REGISTRY,
                   "HOARD_DAEMON_BIN": os.path.join(bench.ROOT, "target", "release", "hoardd")}
            if i == 0:
                # Untimed: resolve once (fills the mirror, writes the lockfile).
                hoard(env, proj, "--quiet", "install", "--ignore-scripts")
                hoard(env, proj, "--quiet", "daemon", "stop")
                subprocess.run(["sh", "-c", f"cat {bench.WORK}/mirror/*/* > /dev/null"])
                continue
            shutil.rmtree(os.path.join(proj, "node_modules"), ignore_errors=True)
            hoard(env, proj, "daemon", "start")
            subprocess.run(["sync"])
            out = hoard(env, proj, "--json", "install", "--ignore-scripts")
            summary = [json.loads(l) for l in out.splitlines() if '"summary"' in l][0]
            fetch_ms = next(t["millis"] for t in summary["timings"] if t["phase"] == "fetch")
            st = json.loads(hoard(env, proj, "--json", "store", "status"))
            pid = int(open(os.path.join(store, "daemon", "hoardd.lock")).read())
            hwm = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM:"))
            hoard(env, proj, "--quiet", "daemon", "stop")
            rows.append({"packages": st["packages"], "files": st["files"], "bytes": st["bytes"],
                         "fetch_s": fetch_ms / 1000, "rss_mb": hwm / 1024})
            print(f"run {i}: {st['packages']} packages, {st['files']} files, {st['bytes'] / 2**20:.0f} MB in "
                  f"{fetch_ms} ms -> {st['files'] / (fetch_ms / 1000):.0f} files/s, "
                  f"{st['bytes'] / 2**20 / (fetch_ms / 1000):.0f} MB/s; hoardd peak RSS {hwm / 1024:.0f} MB", flush=True)
    finally:
        os.killpg(mirror.pid, 15)
    med = lambda k: statistics.median(r[k] for r in rows)  # noqa: E731
    r0 = rows[0]
    print(f"\nmedian of {len(rows)}: {r0['packages']} packages, {r0['files']} files ({r0['bytes'] / 2**20:.0f} MB unpacked, "
          f"deduplicated) imported in {med('fetch_s'):.2f} s = {r0['files'] / med('fetch_s'):.0f} files/s, "
          f"{r0['bytes'] / 2**20 / med('fetch_s'):.0f} MB/s; hoardd peak RSS {med('rss_mb'):.0f} MB")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
