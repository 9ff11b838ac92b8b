#!/usr/bin/env python3
"""A local, caching mirror of the npm registry for benchmarks.

Serves packuments and tarballs on 127.0.0.1 from a cache folder. A miss is fetched once from the
upstream registry and kept, with tarball URLs in packuments rewritten to point here. Once warm,
runs compare tools, not the internet. Optional added latency (per request) and bandwidth limit.

    python3 bench/mirror.py --cache bench/.work/mirror --port 4873 [--latency-ms 20] [--kbps 0]

GET /-/hoard-mirror-stats answers {"hits": n, "misses": n} (misses are upstream fetches).
"""
import argparse
import hashlib
import json
import os
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM = os.environ.get("HOARD_BENCH_UPSTREAM", "https://registry.npmjs.org")
ACCEPT = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"


class State:
    def __init__(self, cache, base, latency, kbps, offline):
        self.cache = cache
        self.base = base
        self.latency = latency
        self.kbps = kbps
        self.offline = offline
        self.hits = 0
        self.misses = 0
        self.lock = threading.Lock()
        self.inflight = {}


def cache_path(state, path):
    h = hashlib.sha256(path.encode()).hexdigest()
    return os.path.join(state.cache, h[:2], h)


def fetch_upstream(state, path):
    url = UPSTREAM + path
    req = urllib.request.Request(url, headers={"Accept": ACCEPT, "User-Agent": "hoard-bench-mirror"})
    ctx = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or None)
    for attempt in range(4):
        try:
            with urllib.request.urlopen(req, timeout=60, context=ctx) as r:
                body = r.read()
                ctype = r.headers.get("Content-Type", "application/octet-stream")
                return 200, ctype, body
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return e.code, "application/json", e.read()
        except Exception:  # noqa: BLE001 - network hiccup: retry
            pass
        time.sleep(0.5 * (attempt + 1))
    return 502, "application/json", b'{"error":"upstream unreachable"}'


def get(state, path):
    """(status, content type, body) for path, from cache or upstream (one fetch per path)."""
    cp = cache_path(state, path)
    if os.path.exists(cp):
        with state.lock:
            state.hits += 1
        with open(cp, "rb") as f:
            data = f.read()
        ctype, _, body = data.partition(b"\n")
        return 200, ctype.decode(), body
    if state.offline:
        return 404, "application/json", b'{"error":"not in the mirror"}'
    with state.lock:
        ev = state.inflight.get(path)
        leader = ev is None
        if leader:
            ev = threading.Event()
            state.inflight[path] = ev
            state.misses += 1
    if not leader:
        ev.wait(120)
        return get(state, path)
    try:
        status, ctype, body = fetch_upstream(state, path)
        if status == 200:
            if "/-/" not in path:
                body = body.replace(UPSTREAM.encode() + b"/", state.base.encode())
            os.makedirs(os.path.dirname(cp), exist_ok=True)
            tmp = cp + ".tmp%d" % threading.get_ident()
            with open(tmp, "wb") as f:
                f.write(ctype.encode() + b"\n" + body)
            os.replace(tmp, cp)
        return status, ctype, body
    finally:
        with state.lock:
            state.inflight.pop(path, None)
        ev.set()


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in separate writes: with Nagle on, each response on a kept-alive
        # connection would wait ~40 ms for the client's delayed ACK.
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def do_GET(self):
            path = self.path.split("?")[0]
            if path == "/-/hoard-mirror-stats":
                body = json.dumps({"hits": state.hits, "misses": state.misses}).encode()
                return self.reply(200, "application/json", body)
            # Normalize scoped names: /@scope%2fname and /@scope/name are the same document.
            norm = path.replace("%2f", "/").replace("%2F", "/")
            if "/-/" not in norm:
                norm = "/" + norm.lstrip("/").replace("/", "%2f")
            if state.latency:
                time.sleep(state.latency / 1000.0)
            status, ctype, body = get(state, norm)
            self.reply(status, ctype, body)

        def reply(self, status, ctype, body):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state.kbps:
                step = max(1024, state.kbps * 1024 // 20)
                for i in range(0, len(body), step):
                    self.wfile.write(body[i : i + step])
                    time.sleep(0.05)
            else:
                self.wfile.write(body)

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--port", type=int, default=4873)
    ap.add_argument("--latency-ms", type=int, default=0)
    ap.add_argument("--kbps", type=int, default=0, help="bandwidth limit per response, KiB/s")
    ap.add_argument("--offline", action="store_true", help="never go upstream")
    a = ap.parse_args()
    os.makedirs(a.cache, exist_ok=True)
    base = f"http://127.0.0.1:{a.port}/"
    state = State(a.cache, base, a.latency_ms, a.kbps, a.offline)
    # A deep accept queue: clients open dozens of connections at once, and the default backlog
    # of 5 turns that into SYN retransmits of 1, 3, 7… seconds.
    ThreadingHTTPServer.request_queue_size = 1024
    server = ThreadingHTTPServer(("127.0.0.1", a.port), make_handler(state))
    server.daemon_threads = True
    print(f"mirror on {base} (cache {a.cache})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
