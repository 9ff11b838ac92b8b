#!/usr/bin/env python3
"""hoardd's memory over a sequence of cold installs, read from /proc.

One daemon with a new, empty store installs bench/fixtures/alotta-files cold (no lockfile, no
store, from the local mirror), then each other fixture cold, one after another. After each
install it reads the daemon's resident set (VmRSS) and its peak so far (VmHWM) from
/proc/<pid>/status, right away and again one second later (free memory beyond the daemon's warm
reserve is handed back to the OS 0.5 s after an install answers), and after the last install once
more 11 s later (the reserve is handed back after 10 s idle). Issue #10's goal: VmRSS <= 150 MB
after the sequence, VmHWM <= 300 MB.

    bench/memory.sh [--fixtures alotta-files,medium-size-app,small-app] [--latency-ms 0]

Writes bench/results/<date>-<host>-memory.md and prints it.
"""
import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (the mirror, paths and the trash are shared with run.py)


def status_kb(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", default="alotta-files,medium-size-app,small-app")
    ap.add_argument("--latency-ms", type=int, default=0)
    ap.add_argument("--kbps", type=int, default=0)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=bench.ROOT, check=True)
    trash = bench.Trash()
    base = os.path.join(bench.WORK, "memory")
    trash.put(base)
    mirror = bench.start_mirror(args)
    rows = []
    idle = None
    t = None
    try:
        for fx in args.fixtures.split(","):
            fdir = os.path.join(bench.HERE, "fixtures", fx)
            if t is None:
                t = bench.Tool("hoard", fdir, trash, "")
                t.base = base
                t.cache = os.path.join(base, "store")
                t.home = os.path.join(base, "home")
                t.runtime = os.path.join(base, "run")
                for d in (t.cache, t.home):
                    os.makedirs(d, exist_ok=True)
            t.project = os.path.join(base, fx)
            os.makedirs(t.project)
            shutil.copy(os.path.join(fdir, "package.json"), t.project)
            subprocess.run(["sync"])
            dt, _ = t.run(t.command())
            pid = t.daemon_pid()
            now = status_kb(pid)
            time.sleep(1)
            later = status_kb(pid)
            rows.append((fx, dt, now["VmRSS"], later["VmRSS"], later["VmHWM"]))
            print(f"{fx}: {dt:.2f} s, VmRSS {now['VmRSS'] // 1024} MB, after 1 s {later['VmRSS'] // 1024} MB, "
                  f"VmHWM {later['VmHWM'] // 1024} MB", file=sys.stderr, flush=True)
        if t is not None and t.daemon_pid():
            time.sleep(10)
            idle = status_kb(t.daemon_pid())["VmRSS"]
    finally:
        if t is not None:
            t.stop_daemon()
        os.killpg(mirror.pid, 15)
        trash.empty()
    lines = [f"# hoardd memory over cold installs, {datetime.datetime.now().isoformat(timespec='seconds')}", "",
             f"Machine: {bench.machine_info()}. One daemon, new store, local mirror (added latency "
             f"{args.latency_ms} ms); each fixture installed cold (no lockfile) after the previous.", "",
             "| after installing | time | VmRSS at once | VmRSS after 1 s | VmHWM (peak so far) |", "|---|---|---|---|---|"]
    for fx, dt, now, later, hwm in rows:
        lines.append(f"| {fx} | {dt:.2f} s | {now / 1024:.0f} MB | {later / 1024:.0f} MB | {hwm / 1024:.0f} MB |")
    if idle is not None:
        lines += ["", f"VmRSS 11 s after the last install (the warm reserve handed back too): {idle / 1024:.0f} MB."]
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.join(bench.HERE, "results"), exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    with open(os.path.join(bench.HERE, "results", f"{stamp}-{platform.node()}-memory.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
