#!/usr/bin/env python3
"""A second machine's cold install with a warm team cache, against the same cold install from
the registry. Each "machine" is a new store with its daemon stopped (its start-up is paid), the
project's package.json and lockfile present, node_modules absent. The registry is bench/mirror.py
on 127.0.0.1 with added latency (default 50 ms per request, pnpm's benchmark setting); the team
cache is a redis-server on 127.0.0.1, filled once by a first machine. Runs alternate
cache / registry. Writes bench/results/<date>-<host>-team.md.

    python3 bench/team.py --runs 5 --fixture alotta-files --latency-ms 50
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as R  # noqa: E402

BASE = os.path.join(R.WORK, "team")
HOARD = os.path.join(R.ROOT, "target", "release", "hoard")
HOARDD = os.path.join(R.ROOT, "target", "release", "hoardd")


def env(store):
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.path.join(BASE, "home"),
        "npm_config_registry": R.REGISTRY,
        "HOARD_STORE_DIR": store,
        "XDG_RUNTIME_DIR": os.path.join(BASE, "run"),
        "HOARD_DAEMON_BIN": HOARDD,
        "HOARD_AHEAD_PROJECTS": "0",
        "HOARD_SCRUB_SECS": "0",
        "LANG": "C.UTF-8",
    }


def hoard(args, cwd, store, check=True):
    t = time.perf_counter()
    p = subprocess.run([HOARD, "--quiet"] + args, cwd=cwd, env=env(store), capture_output=True, text=True)
    dt = time.perf_counter() - t
    if check and p.returncode != 0:
        sys.exit(f"hoard {' '.join(args)} in {cwd} failed: {p.stderr}")
    return dt


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def machine(n, fixture_dir, cache_url):
    """A new machine: a project folder (package.json, lockfile, .npmrc) and an empty store."""
    d = os.path.join(BASE, f"machine-{n}")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "project"))
    for f in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(fixture_dir, f), os.path.join(d, "project", f))
    with open(os.path.join(d, "project", ".npmrc"), "w") as f:
        if cache_url:
            f.write(f"hoard-remote-cache={cache_url}\n")
    return os.path.join(d, "project"), os.path.join(d, "store")


def ms(xs):
    return f"{statistics.median(xs):.2f} s ({min(xs):.2f}–{max(xs):.2f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--fixture", default="alotta-files")
    ap.add_argument("--latency-ms", type=int, default=50)
    args = ap.parse_args()
    if not shutil.which("redis-server"):
        sys.exit("bench/team.py needs redis-server (apt-get install redis-server)")
    R.sh(["cargo", "build", "--release", "--quiet"], cwd=R.ROOT)
    shutil.rmtree(BASE, ignore_errors=True)
    for d in ("home", "run", "lock"):
        os.makedirs(os.path.join(BASE, d), exist_ok=True)
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cache = f"redis://127.0.0.1:{port}/0"
    mirror = R.start_mirror(SimpleNamespace(latency_ms=args.latency_ms, kbps=0, live=False))
    results = {"cache": [], "registry": []}
    try:
        # The project's lockfile, and the first machine that fills the team cache (untimed).
        lockdir = os.path.join(BASE, "lock")
        shutil.copy(os.path.join(R.HERE, "fixtures", args.fixture, "package.json"), lockdir)
        first_store = os.path.join(BASE, "first-store")
        hoard(["install", "--package-lock-only", "--ignore-scripts"], lockdir, first_store)
        hoard(["daemon", "stop"], lockdir, first_store, check=False)
        project, store = machine("first", lockdir, cache)
        hoard(["install", "--ignore-scripts"], project, store)
        hoard(["daemon", "stop"], project, store, check=False)
        n = 0
        for i in range(args.runs + 1):
            for kind in ("cache", "registry"):
                n += 1
                project, store = machine(n, lockdir, cache if kind == "cache" else None)
                subprocess.run(["sync"])
                dt = hoard(["install", "--ignore-scripts"], project, store)
                hoard(["daemon", "stop"], project, store, check=False)
                if i > 0:  # the first round warms the mirror's and redis's pages
                    results[kind].append(dt)
                R.log(f"{kind}: {dt:.2f} s")
    finally:
        redis.terminate()
        if mirror:
            mirror.terminate()
    with open(os.path.join(lockdir, "package-lock.json")) as f:
        count = sum(1 for k in json.load(f)["packages"] if k)
    host = socket.gethostname().split(".")[0]
    stamp = time.strftime("%Y-%m-%d-%H%M")
    out = os.path.join(R.HERE, "results", f"{stamp}-{host}-team.md")
    ratio = statistics.median(results["cache"]) / statistics.median(results["registry"])
    with open(out, "w") as f:
        f.write(f"# Team cache, {time.strftime('%Y-%m-%dT%H:%M:%S')}\n\n")
        f.write(f"Machine: {R.machine_info()}. Fixture {args.fixture}"
                f"{f' ({count} packages)' if count else ''}; registry: the local mirror with "
                f"{args.latency_ms} ms added per request; team cache: redis-server on 127.0.0.1. "
                f"Each run a new store with its daemon stopped, lockfile present. Median of "
                f"{args.runs} (min–max) after a discarded round; cache and registry runs alternate.\n\n")
        f.write("| cold install on a new machine | time |\n|---|---|\n")
        f.write(f"| from the registry | {ms(results['registry'])} |\n")
        f.write(f"| from the warm team cache | {ms(results['cache'])} ×{ratio:.2f} |\n")
    print(open(out).read())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
