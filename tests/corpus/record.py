#!/usr/bin/env python3
"""Record the differential corpus: what npm itself writes for each project in projects.py.

For every project this script writes tests/corpus/projects/<name>/ (package.json, .npmrc,
workspace members), runs `npm install --package-lock-only --ignore-scripts` against a local
recording proxy of the registry, and keeps npm's package-lock.json as npm-lock.json (or, when npm
refuses with ERESOLVE, its message as npm-error.txt). Every packument npm asked for is kept,
trimmed to the fields placement reads and to the versions some spec in the corpus accepts
(prune.js), in registry.jsonl.gz; tarballs npm opened
(packages with bundled dependencies) go to tarballs/. `cargo test` serves these from the test
registry and compares hoard's lockfile with npm's, with no network.

    python3 tests/corpus/record.py              # re-record everything (needs npm and the network)
    python3 tests/corpus/record.py NAME...      # only these projects; other packuments are kept

The upstream registry is `npm config get registry` unless --upstream is given.
"""
import argparse, gzip, json, os, shutil, subprocess, sys, tempfile, threading, urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from projects import P  # noqa: E402

KEEP = ["name", "version", "dependencies", "optionalDependencies", "peerDependencies",
        "peerDependenciesMeta", "bundleDependencies", "bundledDependencies", "os", "cpu", "libc",
        "engines", "deprecated", "bin", "license", "funding", "_hasShrinkwrap", "hasInstallScript"]
INSTALL_SCRIPTS = ["preinstall", "install", "postinstall"]


def trim(pk):
    versions = {}
    for v, m in (pk.get("versions") or {}).items():
        if not isinstance(m, dict):
            continue
        t = {k: m[k] for k in KEEP if k in m}
        d = m.get("dist") or {}
        t["dist"] = {k: d[k] for k in ("tarball", "integrity", "shasum") if k in d}
        s = m.get("scripts")
        if isinstance(s, dict) and any(k in s for k in INSTALL_SCRIPTS):
            t["scripts"] = {k: s[k] for k in INSTALL_SCRIPTS if k in s}
        versions[v] = t
    return {"name": pk.get("name"), "dist-tags": pk.get("dist-tags") or {}, "versions": versions}


class Proxy:
    def __init__(self, upstream):
        self.upstream = upstream.rstrip("/") + "/"
        self.packuments = {}   # name -> raw upstream JSON (bytes)
        self.tarballs = {}     # url path -> bytes
        self.lock = threading.Lock()
        proxy = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                path = self.path.split("?")[0].lstrip("/")
                try:
                    body = proxy.get(path)
                except urllib.error.HTTPError as e:
                    self.send_response(e.code)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                if "/-/" not in path:
                    body = body.replace(proxy.upstream.encode(), proxy.base.encode())
                self.send_response(200)
                self.send_header("content-type",
                                 "application/octet-stream" if "/-/" in path else "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def get(self, path):
        tarball = "/-/" in path
        key = path if tarball else urllib.parse.unquote(path)
        store = self.tarballs if tarball else self.packuments
        with self.lock:
            if key in store:
                return store[key]
        req = urllib.request.Request(self.upstream + path, headers={"accept": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            body = r.read()
        with self.lock:
            store.setdefault(key, body)
            return store[key]


def materialize(name, spec, out):
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    with open(os.path.join(out, "package.json"), "w") as f:
        json.dump(spec["package.json"], f, indent=2)
        f.write("\n")
    if spec["npmrc"]:
        with open(os.path.join(out, ".npmrc"), "w") as f:
            f.write(spec["npmrc"])
    for rel, pj in spec["files"].items():
        p = os.path.join(out, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            json.dump(pj, f, indent=2)
            f.write("\n")


def record(name, spec, proxy, cache, node_version):
    out = os.path.join(HERE, "projects", name)
    materialize(name, spec, out)
    with tempfile.TemporaryDirectory() as tmp:
        work = os.path.join(tmp, name)
        shutil.copytree(out, work)
        userconfig = os.path.join(tmp, "npmrc")
        with open(userconfig, "w") as f:
            f.write(f"registry={proxy.base}\n")
        cmd = ["npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit",
               "--no-fund", "--userconfig", userconfig, "--cache", cache]
        r = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=900)
        for stale in ("npm-lock.json", "npm-error.txt"):
            if os.path.exists(os.path.join(out, stale)):
                os.remove(os.path.join(out, stale))
        if r.returncode == 0:
            shutil.copy(os.path.join(work, "package-lock.json"), os.path.join(out, "npm-lock.json"))
            n = len(json.load(open(os.path.join(out, "npm-lock.json")))["packages"])
            print(f"{name}: {n} lockfile entries", flush=True)
        elif "ERESOLVE" in r.stderr:
            text = r.stderr.replace(proxy.base, "<registry>/")
            with open(os.path.join(out, "npm-error.txt"), "w") as f:
                f.write(text)
            print(f"{name}: npm refuses (ERESOLVE)", flush=True)
        else:
            print(f"{name}: npm failed ({r.returncode}):\n{r.stderr[-2000:]}", flush=True)
            return name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*")
    ap.add_argument("--upstream")
    a = ap.parse_args()
    upstream = a.upstream or subprocess.run(["npm", "config", "get", "registry"],
                                            capture_output=True, text=True).stdout.strip()
    node_version = subprocess.run(["node", "--version"], capture_output=True,
                                  text=True).stdout.strip().lstrip("v")
    npm_version = subprocess.run(["npm", "--version"], capture_output=True, text=True).stdout.strip()
    proxy = Proxy(upstream)
    names = a.names or sorted(P)
    from concurrent.futures import ThreadPoolExecutor
    with tempfile.TemporaryDirectory() as cache, ThreadPoolExecutor(3) as pool_:
        failed = [f for f in pool_.map(
            lambda n: record(n, P[n], proxy, os.path.join(cache, n), node_version), names) if f]
    # Merge with what is kept for the projects not re-recorded.
    reg_path = os.path.join(HERE, "registry.jsonl.gz")
    pool = {}
    if a.names and os.path.exists(reg_path):
        with gzip.open(reg_path, "rt") as f:
            for line in f:
                pk = json.loads(line)
                pool[pk["name"]] = pk
    for name, raw in proxy.packuments.items():
        pk = json.loads(raw)
        if "versions" in pk:
            pool[name] = trim(pk)
    with gzip.open(reg_path, "wt", compresslevel=9) as f:
        for name in sorted(pool):
            line = json.dumps(pool[name], separators=(",", ":"), sort_keys=True)
            # Tarball URLs point at whichever registry serves the corpus.
            f.write(line.replace(proxy.upstream, "{registry}/") + "\n")
    semver_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(
        shutil.which("npm")))), "node_modules", "semver")
    subprocess.run(["node", os.path.join(HERE, "prune.js")], check=True,
                   env={**os.environ, "SEMVER": semver_dir})
    tdir = os.path.join(HERE, "tarballs")
    os.makedirs(tdir, exist_ok=True)
    for path, body in proxy.tarballs.items():
        with open(os.path.join(tdir, urllib.parse.quote(path, safe="")), "wb") as f:
            f.write(body)
    with open(os.path.join(HERE, "meta.json"), "w") as f:
        json.dump({"node": node_version, "npm": npm_version}, f, indent=2)
        f.write("\n")
    print(f"{len(pool)} packuments, {len(proxy.tarballs)} tarballs", flush=True)
    if failed:
        sys.exit(f"npm failed for: {', '.join(failed)}")


if __name__ == "__main__":
    main()
