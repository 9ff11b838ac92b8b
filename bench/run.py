#!/usr/bin/env python3
"""hoard against npm, pnpm and bun, side by side, on this machine.

For each fixture in bench/fixtures/, each tool installs the same package.json from a local mirror
of the registry (bench/mirror.py, built once and kept in bench/.work/mirror), with its own cache
and HOME, in the nine scenarios of pnpm's public benchmark. Runs are interleaved tool by tool
(the order rotated every round), one warm-up run per scenario is discarded, node_modules is renamed into a trash folder between
runs (deleting right before a run slows the next one on this ext4), and `sync` precedes every
timed run. Before each fixture is timed, the run waits until creating a file costs at most
--settle-us (a big delete, even minutes before, can make each create 10-30x dearer here), and it
refuses to start with less than --min-free-gb free. Also measured: peak RSS of each tool's process (and of hoardd), disk used, hoard's
five-checkouts and three-projects-at-once scenarios, and hoard's per-phase timings.

    bench/run.sh [--runs 3] [--fixtures alotta-files,small-app] [--tools hoard,bun,pnpm,npm]
                 [--scenarios clean,lockfile,...] [--latency-ms 0] [--kbps 0]

Writes bench/results/<date>-<host>.md (and .json) and prints the tables.
"""
import argparse
import datetime
import functools
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.path.join(HERE, ".work")
PORT = int(os.environ.get("HOARD_BENCH_PORT", "4873"))
REGISTRY = f"http://127.0.0.1:{PORT}/"
# The mirror's pid once started (None against the live registry): its CPU while a tool runs is
# work that tool's requests cost on the same cores (`Tool.run`).
MIRROR_PID = None
LIVE_REGISTRY = "https://registry.npmjs.org/"

# name: (cache, lockfile, node_modules) present? ; "update" runs the update command.
SCENARIOS = {
    "clean": (False, False, False),
    "lockfile": (False, True, False),
    "cache": (True, False, False),
    "cache+lockfile": (True, True, False),
    "cache+node_modules": (True, False, True),
    "node_modules": (False, False, True),
    "cache+lockfile+node_modules": (True, True, True),
    "lockfile+node_modules": (False, True, True),
    "update": (True, True, True),
    # Resolution alone with warm metadata: no lockfile, write only the lockfile.
    "resolve": (True, False, False),
}
LOCKFILES = {"npm": "package-lock.json", "pnpm": "pnpm-lock.yaml", "bun": "bun.lock", "hoard": "package-lock.json",
             "hoard-base": "package-lock.json", "hoard-global": "package-lock.json",
             "hoard-nosig": "package-lock.json", "link-floor": "package-lock.json",
             "link-floor-check": "package-lock.json"}
# `--tools hoard-base` is a second hoard build (A/B runs): built by this run from a commit with
# `--base-ref <commit>` (a worktree under bench/.work/base, `cargo build --release` in it), or
# the binaries found in $HOARD_BASE_DIR/target/release. The report names which.
# `--tools hoard-global` is this checkout's hoard with `layout=global` in the project's .npmrc.
# `--tools hoard-nosig` is this checkout's hoard with `verify-signatures=off` (with `--sign`, the
# cost of checking registry signatures is hoard against hoard-nosig).
# `--tools link-floor` is not an installer: bench/link_floor.rs rebuilds a finished node_modules
# (hoard's, made once in its baseline) with only mkdir, linkat and symlink on both cores, the
# least any hard-linking installer can do; it is timed in the warm install (cache+lockfile) only.
# `--tools link-floor-check` is the same with each file stat'ed before it is linked (hoard's check
# that a store file is whole, store-format.md).
FLOORS = {"link-floor": [], "link-floor-check": ["--check"]}
FLOOR_SCENARIOS = {"cache+lockfile"}
HOARD_ROOTS = {"hoard": ROOT, "hoard-base": os.environ.get("HOARD_BASE_DIR", ""), "hoard-global": ROOT,
               "hoard-nosig": ROOT}


def build_base(ref):
    """Build `ref` of this repository for `--tools hoard-base`: a detached worktree under
    bench/.work/base/<commit>, its `target` a link to one folder shared by every base build (so
    only hoard's own crates are compiled again for another commit). Returns (worktree, commit)."""
    sha = subprocess.run(["git", "rev-parse", "--verify", ref + "^{commit}"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    tree = os.path.join(WORK, "base", sha[:12])
    target = os.path.join(WORK, "base", "target")
    os.makedirs(target, exist_ok=True)
    if not os.path.isdir(tree):
        subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=True)
        sh(["git", "worktree", "add", "--detach", "--quiet", tree, sha], cwd=ROOT)
    link = os.path.join(tree, "target")
    if not os.path.islink(link):
        os.symlink(target, link)
    log(f"building hoard-base at {sha[:12]} (release) in {tree}")
    sh(["cargo", "build", "--release", "--quiet", "--bin", "hoard", "--bin", "hoardd"], cwd=tree)
    return tree, sha


def base_description(base_sha):
    """What `hoard-base` was, for the report."""
    if base_sha:
        return f"hoard-base: commit {base_sha[:12]}, built by this run"
    root = HOARD_ROOTS["hoard-base"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    at = f" (a checkout at {head.stdout.strip()[:12]})" if head.returncode == 0 else ""
    return f"hoard-base: the binaries found in {root}/target/release{at}, not built by this run"


def hoard_bin(tool, name="hoard"):
    return os.path.join(HOARD_ROOTS[tool], "target", "release", name)


@functools.cache
def floor_bin():
    """bench/link_floor.rs, built with the release profile; its path from cargo (asked once)."""
    out = subprocess.run(["cargo", "build", "--release", "--quiet", "--bench", "link_floor",
                          "--message-format=json"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        m = json.loads(line)
        if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "link_floor" \
                and m.get("executable"):
            return m["executable"]
    raise RuntimeError("cargo did not say where the link_floor bench is")


def applies(tool, scenario):
    return tool not in FLOORS or scenario in FLOOR_SCENARIOS


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


class Trash:
    """Rename instead of delete between runs; delete everything at the end."""

    def __init__(self):
        self.dir = os.path.join(WORK, "trash")
        os.makedirs(self.dir, exist_ok=True)
        self.n = 0

    def put(self, path):
        if os.path.lexists(path):
            self.n += 1
            os.rename(path, os.path.join(self.dir, f"{time.time_ns()}-{self.n}"))

    def empty(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Tool:
    def __init__(self, name, fixture_dir, trash, bin_dir):
        self.name = name
        self.base = os.path.join(WORK, "runs", os.path.basename(fixture_dir), name)
        self.project = os.path.join(self.base, "project")
        self.home = os.path.join(self.base, "home")
        self.cache = os.path.join(self.base, "cache")
        self.runtime = os.path.join(self.base, "run")
        self.golden_lock = os.path.join(self.base, "golden-" + LOCKFILES[name])
        self.trash = trash
        self.bin_dir = bin_dir
        self.fixture = os.path.join(fixture_dir, "package.json")
        self.start_empty()
        for d in (self.project, self.home, self.cache):
            os.makedirs(d, exist_ok=True)
        shutil.copy(self.fixture, os.path.join(self.project, "package.json"))
        if name == "hoard-global":
            with open(os.path.join(self.project, ".npmrc"), "w") as f:
                f.write("layout=global\n")
        if name == "hoard-nosig":
            with open(os.path.join(self.project, ".npmrc"), "w") as f:
                f.write("verify-signatures=off\n")
        self.daemon_hwm_kb = 0

    def start_empty(self):
        """Every run starts each tool from nothing: what an earlier run left in its folder (a
        cache filled from another registry, say) would change this run's disk rows and
        timings. A daemon still serving that folder's store is stopped first."""
        if not os.path.lexists(self.base):
            return
        self.quit_daemon()
        self.trash.put(self.base)

    def quit_daemon(self):
        """Stop the daemon serving this tool's store, if one runs (a floor tool's store is
        filled by this checkout's hoard; the other tools have no daemon)."""
        if self.name not in HOARD_ROOTS and self.name not in FLOORS:
            return
        hoard = hoard_bin(self.name if self.name in HOARD_ROOTS else "hoard")
        if not os.path.exists(hoard):
            return
        subprocess.run([hoard, "--quiet", "daemon", "stop"], env=self.env(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def env(self):
        e = {
            "PATH": self.bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "HOME": self.home,
            "npm_config_registry": REGISTRY,
            "NPM_CONFIG_REGISTRY": REGISTRY,
            # pnpm 11 and later read `pnpm_config_*`, not `npm_config_*`: without these, pnpm
            # 12 went to the public registry and never asked the mirror.
            "pnpm_config_registry": REGISTRY,
            "pnpm_config_update_notifier": "false",
            "BUN_CONFIG_REGISTRY": REGISTRY,
            "npm_config_cache": self.cache,
            "npm_config_audit": "false",
            "npm_config_fund": "false",
            "npm_config_update_notifier": "false",
            "BUN_INSTALL_CACHE_DIR": self.cache,
            "HOARD_STORE_DIR": self.cache,
            "XDG_RUNTIME_DIR": self.runtime,
            "HOARD_IDLE_TIMEOUT": "3600",
            # Background work off while timing: the scrub and ahead-of-time installs would use
            # the CPU while the other tools run (bench/checkout.py measures ahead-of-time work).
            "HOARD_SCRUB_SECS": "0",
            "HOARD_AHEAD_PROJECTS": "0",
            "HOARD_DAEMON_BIN": hoard_bin(self.name, "hoardd") if self.name in HOARD_ROOTS else "",
            "LANG": "C.UTF-8",
        }
        if os.environ.get("SSL_CERT_FILE"):
            e["SSL_CERT_FILE"] = os.environ["SSL_CERT_FILE"]
        return e

    def command(self, update=False, lock_only=False):
        n = self.name
        if n in FLOORS:
            return [self.floor, self.reference(), self.nm()] + FLOORS[n]
        verb = "update" if update else "install"
        if n == "npm":
            return ["npm", verb, "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"] + \
                (["--package-lock-only"] if lock_only else [])
        if n == "pnpm":
            return ["pnpm", verb, "--ignore-scripts", "--store-dir", os.path.join(self.cache, "store"),
                    "--cache-dir", os.path.join(self.cache, "meta"), "--config.confirmModulesPurge=false",
                    "--reporter=silent"] + (["--lockfile-only"] if lock_only else [])
        if n == "bun":
            return ["bun", verb, "--ignore-scripts", "--silent"] + (["--lockfile-only"] if lock_only else [])
        return [hoard_bin(n), "--quiet", verb, "--ignore-scripts"] + (["--package-lock-only"] if lock_only else [])

    def scenario_command(self, scenario):
        return self.command(update=(scenario == "update"), lock_only=(scenario == "resolve"))

    def hoard_json(self):
        return [hoard_bin(self.name), "--json", "install", "--ignore-scripts"]

    def daemon_pid(self):
        lock = os.path.join(self.cache, "daemon", "hoardd.lock")
        try:
            pid = int(open(lock).read().strip())
            os.kill(pid, 0)
            return pid
        except Exception:  # noqa: BLE001
            return None

    def note_daemon_rss(self):
        pid = self.daemon_pid()
        if pid:
            try:
                for line in open(f"/proc/{pid}/status"):
                    if line.startswith("VmHWM:"):
                        self.daemon_hwm_kb = max(self.daemon_hwm_kb, int(line.split()[1]))
            except OSError:
                pass

    def stop_daemon(self):
        if self.name not in HOARD_ROOTS:
            return
        self.note_daemon_rss()
        self.quit_daemon()

    def daemon_cpu(self):
        """(pid, user + system CPU seconds so far) of this tool's hoardd, or (None, 0.0). Read from
        the process's CPU clock (`clock_gettime` of its `CPUCLOCK_SCHED` clock id, nanoseconds,
        threads that have exited included); from /proc's clock ticks of 10 ms if that fails."""
        pid = self.daemon_pid() if self.name in HOARD_ROOTS else None
        if not pid:
            return None, 0.0
        try:
            # Linux's MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED): ((~pid) << 3) | 2.
            return pid, time.clock_gettime(((~pid) << 3) | 2)
        except OSError:
            pass
        return pid, sum(proc_cpu(pid))

    def daemon_split(self):
        """(pid, (user, system) CPU seconds so far) of this tool's hoardd, from /proc's clock
        ticks; (None, (0, 0)) for a tool without one."""
        pid = self.daemon_pid() if self.name in HOARD_ROOTS else None
        return pid, proc_cpu(pid)

    def daemon_cpu_since(self, before):
        """Seconds of CPU hoardd spent since `before` (from `daemon_cpu`), counted once it has
        gone quiet (less than 2 ms of CPU in 100 ms, up to 3 s): work it leaves for after its
        answer (the metadata disk cache's writes) belongs to the install that caused it."""
        pid, spent = self.daemon_cpu()
        if not pid:
            return 0.0
        deadline = time.time() + 3
        while time.time() < deadline:
            time.sleep(0.1)
            _, now = self.daemon_cpu()
            if now - spent < 0.002:
                break
            spent = now
        base = before[1] if before[0] == pid else 0.0
        return max(spent - base, 0.0)

    def run(self, cmd, cpu=False):
        """Run, return (seconds, peak RSS in KiB of the process tree it waited for). With `cpu`,
        `self.last_cpu` is the CPU seconds (user + system) it took: its own and its waited-for
        descendants' (rusage), and for hoard the daemon's too (`daemon_cpu_since`)."""
        out_path = os.path.join(self.base, "last.out")
        err_path = os.path.join(self.base, "last.err")
        before = self.daemon_cpu() if cpu else (None, 0.0)
        split_before = self.daemon_split() if cpu else (None, (0.0, 0.0))
        conns_before = mirror_connections() if cpu else None
        mirror_before = proc_cpu(MIRROR_PID) if cpu else (0.0, 0.0)
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            t0 = time.perf_counter()
            p = subprocess.Popen(cmd, cwd=self.project, env=self.env(), stdout=out, stderr=err, start_new_session=True)
            # wait4 gives the child's own rusage (its peak RSS covers descendants it waited for).
            _, status, ru = os.wait4(p.pid, 0)
            dt = time.perf_counter() - t0
        if cpu:
            self.last_cpu = ru.ru_utime + ru.ru_stime + self.daemon_cpu_since(before)
            # After `daemon_cpu_since` waited for hoardd to go quiet; the mirror is idle by then.
            pid, (du, ds) = self.daemon_split()
            bu, bs = split_before[1] if split_before[0] == pid else (0.0, 0.0)
            mu, ms = proc_cpu(MIRROR_PID)
            # Read after the mirror's CPU: the stats request is a connection of its own (the -1).
            conns_after = mirror_connections() if conns_before is not None else None
            conns = conns_after - conns_before - 1 if conns_after is not None else 0
            self.last_split = (ru.ru_utime + max(du - bu, 0.0), ru.ru_stime + max(ds - bs, 0.0),
                               max(mu + ms - sum(mirror_before), 0.0), conns)
        p.returncode = os.waitstatus_to_exitcode(status)
        self.last_stdout = open(out_path, "rb").read()
        if p.returncode != 0:
            tail = open(err_path, "rb").read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name}: {' '.join(cmd)} failed ({p.returncode}) in {self.project}:\n{tail}")
        if self.name in FLOORS and cmd and cmd[0] == getattr(self, "floor", None):
            # Only the part it times itself: its walk of the reference stands for the lockfile
            # an installer reads, which the floor leaves out.
            dt = float(self.last_stdout.split()[0]) / 1000
        return dt, ru.ru_maxrss

    # --- state preparation -------------------------------------------------------------
    def nm(self):
        return os.path.join(self.project, "node_modules")

    def lock(self):
        return os.path.join(self.project, LOCKFILES[self.name])

    def drop_cache(self):
        self.stop_daemon()
        self.trash.put(self.cache)
        os.makedirs(self.cache, exist_ok=True)

    def prepare(self, scenario):
        cache, lockfile, node_modules = SCENARIOS[scenario]
        if node_modules:
            if not os.path.isdir(self.nm()):
                # Build node_modules untimed with a warm cache and the golden lockfile.
                if os.path.exists(self.golden_lock):
                    shutil.copy(self.golden_lock, self.lock())
                self.run(self.command())
        else:
            self.trash.put(self.nm())
        if lockfile:
            shutil.copy(self.golden_lock, self.lock())
        else:
            for f in set(LOCKFILES.values()):
                p = os.path.join(self.project, f)
                if os.path.exists(p):
                    os.remove(p)
        if scenario == "update":
            shutil.copy(self.golden_lock, self.lock())
        if not cache:
            self.drop_cache()
        if self.name == "bun":
            # bun also keeps a manifest cache in HOME.
            if not cache:
                self.trash.put(self.home)
                os.makedirs(self.home, exist_ok=True)

    def reference(self):
        """link-floor's finished node_modules to rebuild from (made by hoard in baseline)."""
        return os.path.join(self.base, "reference-node_modules")

    def baseline(self):
        """One full install (fills the cache, records the golden lockfile). A lockfile left by
        an earlier run (possibly against another registry) is not reused."""
        self.trash.put(self.nm())
        for f in set(LOCKFILES.values()):
            p = os.path.join(self.project, f)
            if os.path.exists(p):
                os.remove(p)
        if self.name in FLOORS:
            # The reference is hoard's own install of the fixture, from this tool's cache.
            self.run([hoard_bin("hoard"), "--quiet", "install", "--ignore-scripts"])
            self.quit_daemon()
            self.trash.put(self.reference())
            os.rename(self.nm(), self.reference())
            self.floor = floor_bin()
        else:
            self.run(self.command())
        shutil.copy(self.lock(), self.golden_lock)


def creation_probe(trash):
    """Microseconds per file created (2,000 small files in 20 folders, moved to the trash after).
    On ext4 without a journal, the allocator skips every inode freed in the last one to six
    minutes, so right after a big delete each create can cost 100-500 us instead of ~15, for
    every tool alike but not equally (bun's cold install took 8.8 s instead of 1.4 s)."""
    d = os.path.join(WORK, f"probe-{time.time_ns()}")
    os.makedirs(d)
    t0 = time.perf_counter()
    for i in range(20):
        sd = os.path.join(d, str(i))
        os.mkdir(sd)
        for j in range(100):
            fd = os.open(os.path.join(sd, str(j)), os.O_CREAT | os.O_WRONLY, 0o644)
            os.write(fd, b"x" * 100)
            os.close(fd)
    us = (time.perf_counter() - t0) / 2000 * 1e6
    trash.put(d)
    return us


def settle(trash, limit_us, max_wait_s):
    """Wait (up to max_wait_s) until creating a file costs at most limit_us; the last figure."""
    waited = 0
    while True:
        us = creation_probe(trash)
        if us <= limit_us or waited >= max_wait_s:
            if us > limit_us:
                log(f"file creation still costs {us:.0f} us after {waited} s: timing anyway, the figures are skewed")
            return us
        log(f"file creation costs {us:.0f} us (> {limit_us} us: freed inodes are being skipped); waiting 30 s")
        time.sleep(30)
        waited += 30


def free_gb(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize / (1 << 30)


def du_kb(paths):
    paths = [p for p in paths if os.path.exists(p)]
    if not paths:
        return 0
    out = subprocess.run(["du", "-skc"] + paths, capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1].split()[0])


def fmt_s(x):
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def ensure_tools(tools):
    bin_dir = os.path.join(WORK, "tools", "node_modules", ".bin")
    need = [t for t in ("pnpm", "bun") if t in tools and not os.path.exists(os.path.join(bin_dir, t))]
    if need:
        log(f"installing {', '.join(need)} (latest) into {WORK}/tools")
        os.makedirs(os.path.join(WORK, "tools"), exist_ok=True)
        sh(["npm", "install", "--prefix", os.path.join(WORK, "tools"), "--no-audit", "--no-fund"] + [f"{t}@latest" for t in need])
    return bin_dir


def versions(tools, env_bin):
    v = {}
    for t in tools:
        if t in FLOORS:
            v[t] = "(bench/link_floor.rs)"
            continue
        cmd = {"npm": ["npm", "--version"], "pnpm": [os.path.join(env_bin, "pnpm"), "--version"],
               "bun": [os.path.join(env_bin, "bun"), "--version"],
               "hoard": [hoard_bin("hoard"), "--version"], "hoard-base": [hoard_bin("hoard-base"), "--version"],
               "hoard-global": [hoard_bin("hoard-global"), "--version"],
               "hoard-nosig": [hoard_bin("hoard-nosig"), "--version"]}[t]
        v[t] = subprocess.run(cmd, capture_output=True, text=True).stdout.strip().split()[-1]
    return v


def proc_cpu(pid):
    """(user, system) CPU seconds so far of process `pid`, its exited threads included, from
    /proc's clock ticks; (0, 0) without a pid or when it cannot be read."""
    if not pid:
        return 0.0, 0.0
    try:
        stat = open(f"/proc/{pid}/stat").read()
        fields = stat[stat.rindex(")") + 2:].split()  # from field 3 (state) on
        tck = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tck, int(fields[12]) / tck  # utime, stime
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0


def start_mirror(args):
    if getattr(args, "live", False):
        return None
    cache = os.path.join(WORK, "mirror")
    cmd = [sys.executable, os.path.join(HERE, "mirror.py"), "--cache", cache, "--port", str(PORT),
           "--latency-ms", str(args.latency_ms), "--kbps", str(args.kbps)]
    if getattr(args, "sign", False):
        cmd.append("--sign")
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    global MIRROR_PID
    MIRROR_PID = p.pid
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=0.2).close()
            return p
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the mirror did not start")


def mirror_stats():
    if REGISTRY == LIVE_REGISTRY:
        return {"hits": 0, "misses": 0}
    with urllib.request.urlopen(REGISTRY + "-/hoard-mirror-stats") as r:
        return json.load(r)


def mirror_requests():
    """Requests the mirror has answered (hits, misses and 304s), or None without a mirror."""
    if MIRROR_PID is None:
        return None
    st = mirror_stats()
    return st["hits"] + st["misses"] + st["not_modified"]


def mirror_connections():
    """Connections the mirror has accepted so far (its stats request's own included), or None
    without a mirror (or from a mirror too old to count them)."""
    if MIRROR_PID is None:
        return None
    return mirror_stats().get("connections")


def mirror_aging(on):
    """Let the mirror's packuments age out and be fetched again (a warm-up), or not (timing)."""
    if REGISTRY == LIVE_REGISTRY:
        return
    with urllib.request.urlopen(REGISTRY + "-/hoard-mirror-aging?on=" + ("1" if on else "0")) as r:
        r.read()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fixtures", default="alotta-files,small-app")
    ap.add_argument("--tools", default="hoard,bun,pnpm,npm")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--latency-ms", type=int, default=0)
    ap.add_argument("--kbps", type=int, default=0)
    ap.add_argument("--sign", action="store_true",
                    help="the mirror signs packuments and publishes its key (see mirror.py)")
    ap.add_argument("--base-ref", help="build this commit for --tools hoard-base (instead of HOARD_BASE_DIR)")
    ap.add_argument("--live", action="store_true",
                    help="no mirror: every tool talks to the public registry (cold figures vary run to run)")
    ap.add_argument("--skip-extras", action="store_true", help="skip hoard's checkouts/concurrent scenarios")
    ap.add_argument("--settle-us", type=int, default=60,
                    help="before each fixture, wait until creating a file costs at most this (see creation_probe)")
    ap.add_argument("--settle-max-s", type=int, default=480, help="longest wait for --settle-us")
    ap.add_argument("--min-free-gb", type=float, default=15,
                    help="refuse to start with less free disk than this (the trash is deleted only at the end)")
    args = ap.parse_args()
    if args.live:
        global REGISTRY
        REGISTRY = LIVE_REGISTRY
    tools = args.tools.split(",")
    scenarios = args.scenarios.split(",")
    fixtures = args.fixtures.split(",")
    started = time.time()
    os.makedirs(WORK, exist_ok=True)
    if free_gb(WORK) < args.min_free_gb:
        sys.exit(f"only {free_gb(WORK):.1f} GB free under {WORK}: a run keeps every node_modules and "
                 f"cache it made until it ends (several GB per fixture and tool); free some space or "
                 f"pass --min-free-gb")

    log("building hoard (release)")
    sh(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
    base_sha = None
    if "hoard-base" in tools and args.base_ref:
        HOARD_ROOTS["hoard-base"], base_sha = build_base(args.base_ref)
    if "hoard-base" in tools and not os.path.exists(hoard_bin("hoard-base")):
        sys.exit("--tools hoard-base needs --base-ref <commit>, or HOARD_BASE_DIR: a checkout with target/release built")
    bin_dir = ensure_tools(tools)
    vers = versions(tools, bin_dir)
    trash = Trash()
    mirror = start_mirror(args)
    results = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "host": platform.node(),
               "machine": machine_info(), "versions": vers, "runs": args.runs, "latency_ms": args.latency_ms,
               "kbps": args.kbps, "registry": REGISTRY, "fixtures": {}}
    if "hoard-base" in tools:
        results["base"] = base_description(base_sha)
    try:
        for fx in fixtures:
            fdir = os.path.join(HERE, "fixtures", fx)
            ts = {t: Tool(t, fdir, trash, bin_dir) for t in tools}
            log(f"== {fx}: warming the mirror and each tool's cache")
            mirror_aging(True)
            for t in ts.values():
                before = mirror_requests()
                t.baseline()
                if before is not None and t.name not in FLOORS and mirror_requests() == before:
                    raise RuntimeError(f"{t.name} installed {fx} without asking the mirror at {REGISTRY}: "
                                       "it does not read the registry setting this script gives it "
                                       "(see Tool.env), so its figures would not be the mirror's")
            mirror_aging(False)
            warm = mirror_stats()
            res = {"scenarios": {}, "rss_kb": {}, "disk_kb": {}, "packages": count_packages(ts)}
            res["create_us"] = settle(trash, args.settle_us, args.settle_max_s)
            if free_gb(WORK) < 2:
                log(f"warning: {free_gb(WORK):.1f} GB free: the next runs may fail with ENOSPC")
            for sc in scenarios:
                times = {t: [] for t in tools}
                rss = {t: [] for t in tools}
                cpu = {t: [] for t in tools}
                split = {t: [] for t in tools}
                for i in range(args.runs + 1):
                    # The order rotates round by round, so each tool takes each place equally
                    # often: in an A/A run (one build under two names) the tool that always ran
                    # first was 3% slower, and with the order reversed every other round the
                    # middle one of three always waited ~0.3 s between its runs while the outer
                    # ones waited 0.1 and 0.5 s in turn (a daemon's caches cool as it waits).
                    k = i % len(tools)
                    for name in tools[k:] + tools[:k]:
                        if not applies(name, sc):
                            continue
                        t = ts[name]
                        t.prepare(sc)
                        subprocess.run(["sync"])
                        dt, peak = t.run(t.scenario_command(sc), cpu=True)
                        if name in HOARD_ROOTS:
                            t.note_daemon_rss()
                        if i > 0:  # the first round is the warm-up
                            times[name].append(dt)
                            rss[name].append(peak)
                            cpu[name].append(t.last_cpu)
                            split[name].append(t.last_split)
                log(f"{fx} {sc}: " + ", ".join(f"{n} {fmt_s(statistics.median(v))}" for n, v in times.items() if v))
                res["scenarios"][sc] = {n: v for n, v in times.items() if v}
                res.setdefault("cpu_seconds", {})[sc] = {n: v for n, v in cpu.items() if v}
                res.setdefault("cpu_split", {})[sc] = {n: v for n, v in split.items() if v}
                for n in tools:
                    res["rss_kb"][n] = max(res["rss_kb"].get(n, 0), max(rss[n], default=0))
            # The floor: `cp -al` of hoard's finished node_modules (same files, same folders).
            if "hoard" in ts:
                t = ts["hoard"]
                t.prepare("cache+lockfile")
                t.run(t.command())
                floor = []
                for _ in range(args.runs):
                    dst = os.path.join(WORK, "trash", f"cpal-{time.time_ns()}")
                    subprocess.run(["sync"])
                    t0 = time.perf_counter()
                    sh(["cp", "-al", t.nm(), dst])
                    floor.append(time.perf_counter() - t0)
                res["cp_al_seconds"] = floor
                log(f"{fx} cp -al floor: {fmt_s(statistics.median(floor))}")
            # Disk used after a cache+lockfile install: cache/store and node_modules together.
            for name, t in ts.items():
                t.prepare("cache+lockfile")
                t.run(t.command())
                res["disk_kb"][name] = {"cache": du_kb([t.cache]), "node_modules": du_kb([t.nm()]),
                                        "together": du_kb([t.cache, t.nm()])}
            if "hoard" in ts:
                res["hoardd_peak_rss_kb"] = ts["hoard"].daemon_hwm_kb
                res["hoard_phases"] = hoard_phases(ts["hoard"])
            res["mirror_misses_while_timing"] = mirror_stats()["misses"] - warm["misses"]
            results["fixtures"][fx] = res
            for t in ts.values():
                t.stop_daemon()
        if "hoard" in tools and not args.skip_extras:
            results["extras"] = hoard_extras(fixtures, trash, bin_dir)
    finally:
        if mirror is not None:
            os.killpg(mirror.pid, signal.SIGTERM)
        log("deleting the trash")
        trash.empty()
    results["minutes"] = round((time.time() - started) / 60, 1)
    write(results, tools, scenarios)


def count_packages(ts):
    t = ts.get("hoard") or next(iter(ts.values()))
    lock = os.path.join(t.base, "golden-package-lock.json")
    if os.path.exists(lock):
        return sum(1 for k in json.load(open(lock))["packages"] if k)
    return None


def hoard_phases(t):
    """Per-phase timings from the install summary: warm (cache+lockfile) and no-op."""
    out = {}
    for sc in ("cache+lockfile", "cache+lockfile+node_modules"):
        rows = []
        for _ in range(3):
            t.prepare(sc)
            subprocess.run(["sync"])
            t.run(t.hoard_json())
            for line in t.last_stdout.decode().splitlines():
                ev = json.loads(line)
                if ev.get("type") == "summary":
                    rows.append({**{p["phase"]: p["millis"] for p in ev["timings"]}, "total": ev["total_millis"],
                                 "files": ev["files_linked"], "up_to_date": ev["up_to_date"]})
        out[sc] = rows
    return out


def hoard_extras(fixtures, trash, bin_dir):
    """Five checkouts of one project from one warm store; three projects at once."""
    fx = fixtures[0]
    extras = {}
    base = os.path.join(WORK, "extras")
    trash.put(base)
    os.makedirs(base)
    t = Tool("hoard", os.path.join(HERE, "fixtures", fx), trash, bin_dir)
    t.baseline()
    lock = t.golden_lock
    times = []
    dirs = []
    for i in range(5):
        d = os.path.join(base, f"checkout{i}")
        os.makedirs(d)
        shutil.copy(t.fixture, os.path.join(d, "package.json"))
        shutil.copy(lock, os.path.join(d, "package-lock.json"))
        t.project = d
        subprocess.run(["sync"])
        dt, _ = t.run(t.command())
        times.append(dt)
        dirs.append(os.path.join(d, "node_modules"))
    extras["five_checkouts"] = {"fixture": fx, "seconds": times, "store_kb": du_kb([t.cache]),
                                "store_plus_5_node_modules_kb": du_kb([t.cache] + dirs),
                                "one_node_modules_alone_kb": du_kb([dirs[0]])}
    # Three different projects at once (warm store, lockfiles present).
    projs = []
    for fx2 in os.listdir(os.path.join(HERE, "fixtures")):
        d = os.path.join(base, f"multi-{fx2}")
        os.makedirs(d)
        shutil.copy(os.path.join(HERE, "fixtures", fx2, "package.json"), os.path.join(d, "package.json"))
        t.project = d
        t.run(t.command())  # warm the store for this fixture; keeps its lockfile
        trash.put(os.path.join(d, "node_modules"))
        projs.append(d)
    projs = projs[:3]
    subprocess.run(["sync"])
    t0 = time.perf_counter()
    ps = [subprocess.Popen(t.command(), cwd=d, env=t.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for d in projs]
    codes = [p.wait() for p in ps]
    together = time.perf_counter() - t0
    seq = []
    for d in projs:
        trash.put(os.path.join(d, "node_modules"))
        subprocess.run(["sync"])
        t.project = d
        seq.append(t.run(t.command())[0])
    extras["three_at_once"] = {"projects": [os.path.basename(p) for p in projs], "seconds_together": together,
                               "seconds_one_after_another": sum(seq), "exit_codes": codes}
    t.stop_daemon()
    return extras


def machine_info():
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 30)
    fs = subprocess.run(["df", "-T", WORK], capture_output=True, text=True).stdout.splitlines()[-1].split()[1]
    return f"{os.cpu_count()} cores ({cpu}), {mem} GiB, {fs}, {platform.system()} {platform.release()}"


def scenario_table(rows, tools, scenarios, cell):
    """A table of scenarios by tools: `cell(values, hoard's values)` for each tool that ran the
    scenario (hoard's are None in hoard's own cell and when hoard did not run it), "—" for one
    that did not."""
    lines = ["| scenario | " + " | ".join(tools) + " |", "|---" * (len(tools) + 1) + "|"]
    for sc in scenarios:
        row = rows.get(sc)
        if not row:
            continue
        cells = [cell(row[t], row.get("hoard") if t != "hoard" else None) if row.get(t) else "—"
                 for t in tools]
        lines.append(f"| {sc} | " + " | ".join(cells) + " |")
    return lines


def against(v, hoard):
    """Against hoard: " ×<ratio of medians> (paired ×<median of the per-round ratios>)". Round
    by round (each round runs every tool once, back to back), the median of the ratios is
    steadier than the ratio of medians when the machine's speed drifts during the run."""
    cell = f" ×{statistics.median(v) / statistics.median(hoard):.2f}"
    pairs = [x / y for x, y in zip(v, hoard) if y > 0]
    if pairs:
        cell += f" (paired ×{statistics.median(pairs):.2f})"
    return cell


def time_cell(v, hoard):
    """Median (min–max), and against hoard the ratios (`against`)."""
    cell = f"{fmt_s(statistics.median(v))} ({fmt_s(min(v))}–{fmt_s(max(v))})"
    return cell + (against(v, hoard) if hoard else "")


def cpu_cell(v, hoard):
    """Median CPU time, and against hoard the ratios (`against`)."""
    return fmt_s(statistics.median(v)) + (against(v, hoard) if hoard else "")


def cpu_table(res, tools, scenarios):
    """The CPU each run took (user + system: the tool's processes, and hoardd's until it went
    quiet), medians; a 2-core machine's installs are mostly CPU-bound, so this is steadier
    than wall time when the machine's speed drifts."""
    rows = res.get("cpu_seconds") or {}
    if not any(rows.get(sc) for sc in scenarios):
        return []
    return (["", "CPU per run (user + system, median; the tool's processes from `wait4`, hoardd's from its CPU clock):", ""]
            + scenario_table(rows, tools, scenarios, cpu_cell))


def split_cell(v, hoard):
    """Median user / system seconds of the tool's processes, the mirror's CPU while it ran, and
    the connections it opened to the mirror (results from before they were counted have none)."""
    med = [statistics.median(x[k] for x in v) for k in range(3)]
    cell = f"{fmt_s(med[0])} / {fmt_s(med[1])}"
    # Against the live registry there is no mirror to read (its figures are all zero).
    if any(x[2] > 0 for x in v):
        cell += f" · mirror {fmt_s(med[2])}"
    conns = [x[3] for x in v if len(x) > 3]
    if conns and any(conns):
        cell += f", {statistics.median(conns):.0f} connections"
    return cell


def split_table(res, tools, scenarios):
    """Where the CPU went: user and system time (medians of each), and the CPU the mirror spent
    serving the tool's requests on the same cores. Two tools with the same system time and
    different user time differ in their own code, not in the filesystem work."""
    rows = res.get("cpu_split") or {}
    if not any(rows.get(sc) for sc in scenarios):
        return []
    what = "user / system (median; hoardd's from /proc's clock ticks)"
    # From the figures, not MIRROR_PID: `--render` runs without a mirror.
    cells = [x for per_tool in rows.values() for v in per_tool.values() for x in v]
    if any(x[2] > 0 for x in cells):
        what += " · the mirror's CPU while the tool ran"
        if any(len(x) > 3 and x[3] for x in cells):
            what += ", and the connections the tool opened to it"
    return ["", f"CPU split per run: {what}:", ""] + scenario_table(rows, tools, scenarios, split_cell)


def write(results, tools, scenarios, name=None):
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    if name is None:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
        name = f"{stamp}-{results['host']}"
        # Two runs ending in the same minute: the second gets a suffix instead of overwriting.
        n = 1
        while os.path.exists(os.path.join(HERE, "results", name + ".md")):
            n += 1
            name = f"{stamp}-{results['host']}-{n}"
    # From the result, since `--render` runs without `--live` (results from before the registry
    # was kept in them read as the mirror's).
    live = results.get("registry", REGISTRY) == LIVE_REGISTRY
    lines = [f"# Benchmark {results['date']} on {results['host']}", "",
             f"Machine: {results['machine']}.  ",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()) + ".  ",
             *([results["base"] + ".  "] if results.get("base") else []),
             f"Median of {results['runs']} runs after a discarded warm-up, interleaved, the order rotated every round; (min–max); ×: time relative to hoard. "
             + (f"Live registry {LIVE_REGISTRY}. " if live else
              f"Local mirror on 127.0.0.1, added latency {results['latency_ms']} ms. ")
             + f"Whole run: {results.get('minutes')} min.", ""]
    for fx, res in results["fixtures"].items():
        lines += [f"## {fx} ({res['packages']} packages)", ""]
        lines += scenario_table(res["scenarios"], tools, scenarios, time_cell)
        lines += cpu_table(res, tools, scenarios)
        lines += split_table(res, tools, scenarios)
        if res.get("cp_al_seconds"):
            f = res["cp_al_seconds"]
            lines += ["", f"Floor: `cp -al` of the same node_modules: {fmt_s(statistics.median(f))} ({fmt_s(min(f))}–{fmt_s(max(f))})."]
        if res.get("create_us") is not None:
            lines += ["", f"Creating a file cost {res['create_us']:.0f} us before timing began (`creation_probe`)."]
        lines += ["", "| | " + " | ".join(tools) + " |", "|---" * (len(tools) + 1) + "|",
                  "| peak RSS of the tool's process | " + " | ".join(f"{res['rss_kb'][t] / 1024:.0f} MB" for t in tools) + " |",
                  "| disk: cache/store | " + " | ".join(f"{res['disk_kb'][t]['cache'] / 1024:.0f} MB" for t in tools) + " |",
                  "| disk: node_modules alone | " + " | ".join(f"{res['disk_kb'][t]['node_modules'] / 1024:.0f} MB" for t in tools) + " |",
                  "| disk: both together | " + " | ".join(f"{res['disk_kb'][t]['together'] / 1024:.0f} MB" for t in tools) + " |", ""]
        if "hoardd_peak_rss_kb" in res:
            lines.append(f"hoardd peak RSS: {res['hoardd_peak_rss_kb'] / 1024:.0f} MB. Mirror misses while timing: {res['mirror_misses_while_timing']}.")
            lines.append("")
            for sc, rows in res.get("hoard_phases", {}).items():
                lines.append(f"hoard phases, {sc}: " + "; ".join(
                    ", ".join(f"{k} {v}" for k, v in r.items()) for r in rows))
            lines.append("")
    ex = results.get("extras")
    if ex:
        f5 = ex["five_checkouts"]
        lines += ["## hoard's own scenarios", "",
                  f"Five checkouts of {f5['fixture']} one after another from one warm store: "
                  + ", ".join(fmt_s(s) for s in f5["seconds"])
                  + f"; disk: store {f5['store_kb'] / 1024:.0f} MB, store + 5 node_modules {f5['store_plus_5_node_modules_kb'] / 1024:.0f} MB "
                  f"(one node_modules counted alone: {f5['one_node_modules_alone_kb'] / 1024:.0f} MB).", "",
                  f"Three projects at once ({', '.join(ex['three_at_once']['projects'])}), warm store, lockfiles: "
                  f"{fmt_s(ex['three_at_once']['seconds_together'])} together vs {fmt_s(ex['three_at_once']['seconds_one_after_another'])} one after another.", ""]
    text = "\n".join(lines)
    with open(os.path.join(HERE, "results", name + ".md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(HERE, "results", name + ".json"), "w") as f:
        json.dump(results, f, indent=1)
    print(text)


def render(path):
    """Write the .md of a results .json again (after the report's format changed)."""
    results = json.load(open(path))
    first = next(iter(results["fixtures"].values()))
    scenarios = list(first["scenarios"])
    tools = list(next(iter(first["scenarios"].values())))
    name = os.path.basename(path)[: -len(".json")]
    write(results, tools, scenarios, name)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--render":
        render(sys.argv[2])
    else:
        main()
