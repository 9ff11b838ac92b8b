#!/usr/bin/env python3
"""`git checkout` of a branch whose lockfile differs, in the global layout: how long the
`hoard install` after the switch takes when the daemon had a few seconds to prepare it, against
the no-op and against the same switch with preparation turned off (HOARD_AHEAD_PROJECTS=0).

Branch A is one fixture's package.json and lockfile, branch B another's (by default
alotta-files and medium-size-app: over a thousand packages change). Registry: bench/mirror.py on
127.0.0.1, as bench/run.py. Writes bench/results/<date>-<host>-checkout.md."""
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

BASE = os.path.join(R.WORK, "checkout")
HOARD = os.path.join(R.ROOT, "target", "release", "hoard")
HOARDD = os.path.join(R.ROOT, "target", "release", "hoardd")


def env(ahead):
    e = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.path.join(BASE, "home"),
        "npm_config_registry": R.REGISTRY,
        "HOARD_STORE_DIR": os.path.join(BASE, "store"),
        "XDG_RUNTIME_DIR": os.path.join(BASE, "run"),
        "HOARD_IDLE_TIMEOUT": "3600",
        "HOARD_DAEMON_BIN": HOARDD,
        "HOARD_AHEAD_PROJECTS": "32" if ahead else "0",
        # The scrub's rounds would land in some timed runs and not others.
        "HOARD_SCRUB_SECS": "0",
        "LANG": "C.UTF-8",
    }
    return e


def hoard(args, cwd, ahead=True, check=True):
    t = time.perf_counter()
    p = subprocess.run([HOARD, "--quiet"] + args, cwd=cwd, env=env(ahead), capture_output=True, text=True)
    dt = time.perf_counter() - t
    if check and p.returncode != 0:
        sys.exit(f"hoard {' '.join(args)} in {cwd} failed: {p.stderr}")
    return dt, p


def branch(name, fixture, base=None):
    """A branch's folder: a fixture's package.json, or with `drop:<names>` the base branch's
    without those dependencies (the same project, a smaller tree)."""
    d = os.path.join(BASE, "branch-" + name)
    os.makedirs(d, exist_ok=True)
    if fixture.startswith("drop:"):
        with open(os.path.join(base, "package.json")) as f:
            pkg = json.load(f)
        for n in fixture[len("drop:"):].split(","):
            for section in ("dependencies", "devDependencies"):
                pkg.get(section, {}).pop(n, None)
        with open(os.path.join(d, "package.json"), "w") as f:
            json.dump(pkg, f, indent=2)
    else:
        shutil.copy(os.path.join(R.HERE, "fixtures", fixture, "package.json"), os.path.join(d, "package.json"))
    with open(os.path.join(d, ".npmrc"), "w") as f:
        f.write("layout=global\n")
    hoard(["install", "--package-lock-only", "--ignore-scripts"], d)
    return d


def packages_changed(a, b):
    """name@version pairs in one lockfile and not in the other."""
    def ids(d):
        with open(os.path.join(d, "package-lock.json")) as f:
            lock = json.load(f)
        return {(loc.rsplit("node_modules/", 1)[-1], p.get("version")) for loc, p in lock["packages"].items() if loc}
    x, y = ids(a), ids(b)
    return len(x ^ y)


def checkout(project, d):
    for f in ("package.json", "package-lock.json", ".npmrc"):
        shutil.copy(os.path.join(d, f), os.path.join(project, f))


def timed_install(project, ahead):
    subprocess.run(["sync"])
    dt, _ = hoard(["install", "--ignore-scripts"], project, ahead)
    return dt


def ms(xs):
    return f"{statistics.median(xs) * 1000:.0f} ms ({min(xs) * 1000:.0f}–{max(xs) * 1000:.0f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--wait", type=float, default=5.0, help="seconds the daemon gets to prepare")
    ap.add_argument("--a", default="alotta-files")
    ap.add_argument("--b", default="medium-size-app",
                    help="a fixture, or drop:<name,name> for branch A without those dependencies")
    args = ap.parse_args()
    R.sh(["cargo", "build", "--release", "--quiet"], cwd=R.ROOT)
    shutil.rmtree(BASE, ignore_errors=True)
    for d in ("home", "store", "run", "project"):
        os.makedirs(os.path.join(BASE, d), exist_ok=True)
    mirror = R.start_mirror(SimpleNamespace(latency_ms=0, kbps=0, live=False))
    project = os.path.join(BASE, "project")
    results = {}
    try:
        a = branch("a", args.a)
        b = branch("b", args.b, a)
        changed = packages_changed(a, b)
        for ahead in (True, False):
            hoard(["daemon", "stop"], project, ahead, check=False)
            checkout(project, a)
            hoard(["install", "--ignore-scripts"], project, ahead)
            # Warm-up round: both branches' packages in the store, and their slots.
            for d in (b, a):
                checkout(project, d)
                time.sleep(args.wait)
                hoard(["install", "--ignore-scripts"], project, ahead)
            noop = [timed_install(project, ahead) for _ in range(args.runs)]
            # The same no-op after the same idle wait as a switch gets: the first command after
            # seconds of idle pays for waking the machine (here 1-3 ms of a 5 ms no-op).
            noop_idle = []
            for _ in range(args.runs):
                time.sleep(args.wait)
                noop_idle.append(timed_install(project, ahead))
            switch = []
            for i in range(args.runs):
                for d in (b, a):
                    checkout(project, d)
                    time.sleep(args.wait)
                    switch.append(timed_install(project, ahead))
            results[ahead] = (noop, noop_idle, switch)
            R.log(f"prepare {'on' if ahead else 'off'}: no-op {ms(noop)}, after {args.wait:.0f} s idle "
                  f"{ms(noop_idle)}, after a checkout {ms(switch)}")
    finally:
        hoard(["daemon", "stop"], project, check=False)
        if mirror:
            mirror.terminate()
    host = socket.gethostname().split(".")[0]
    stamp = time.strftime("%Y-%m-%d-%H%M")
    out = os.path.join(R.HERE, "results", f"{stamp}-{host}-checkout.md")
    on_noop, on_idle, on_switch = results[True]
    off_noop, off_idle, off_switch = results[False]
    med = statistics.median

    def row(name, noop, idle, switch):
        return (f"| {name} | {ms(noop)} | {ms(idle)} | {ms(switch)} | "
                f"×{med(switch) / med(noop):.2f} | ×{med(switch) / med(idle):.2f} |\n")

    text = (
        f"# Checkout benchmark {time.strftime('%Y-%m-%dT%H:%M')} on {host}\n\n"
        f"Branches: A = {args.a}, B = {args.b} (global layout; {changed} name@version differ); "
        f"{args.runs} switches each way, "
        f"{args.wait:.0f} s between the switch and `hoard install`; medians (min–max). "
        "Every timed install follows a `sync`; the idle no-op waits as long as a switch does "
        "before it, so both pay the same for waking the machine.\n\n"
        "| | no-op, back to back | no-op after the same idle | install after a checkout "
        "| ratio to back to back | ratio to the same idle |\n|---|---|---|---|---|---|\n"
        + row("prepared ahead (default)", on_noop, on_idle, on_switch)
        + row("HOARD_AHEAD_PROJECTS=0", off_noop, off_idle, off_switch)
        + f"\nIssue #12's goal: the install after a checkout ≤ 2× the no-op (here "
        f"×{med(on_switch) / med(on_noop):.2f} of the back-to-back no-op, "
        f"×{med(on_switch) / med(on_idle):.2f} of the no-op after the same idle).\n"
    )
    with open(out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
