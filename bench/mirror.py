#!/usr/bin/env python3
"""A local, caching mirror of the npm registry for benchmarks.

Serves packuments and tarballs on 127.0.0.1 from a cache folder. A miss is fetched once from the
upstream registry and kept, with tarball URLs in packuments rewritten to point here. Once warm,
runs compare tools, not the internet. Optional added latency (per request) and bandwidth limit.
One asyncio event loop serves every connection (it runs on the cores the tools are timed on, and
a thread per connection charged a tool for each connection it opened); upstream fetches and
signing run in a thread pool.

A packument kept longer than --max-age-hours (default 1) is fetched again the next time it is
asked for (the cached copy is served if upstream fails); tarballs are kept for good. Without
that, packuments mirrored hours apart disagree: a @babel/core mirrored later asked for a
@babel/code-frame release the copy mirrored earlier did not list, and small-app failed to
resolve. `GET /-/hoard-mirror-aging?on=0` stops packuments aging (nothing is fetched again while
tools are timed), `?on=1` lets them age again: bench/run.py turns aging on for each fixture's
untimed warm-up, which asks for all of its packuments, so they are refreshed together, and off
for the timing.

    python3 bench/mirror.py --cache bench/.work/mirror --port 4873 [--latency-ms 20] [--kbps 0]

GET /-/hoard-mirror-stats answers {"hits": n, "misses": n, "connections": n, …} (misses are
upstream fetches; connections counts every connection accepted, this request's own included).

With --sign the mirror acts as a registry that signs: every version in a packument it serves gets
`dist.signatures` (ECDSA P-256 over `<name>@<version>:<integrity>`, as npm's registry signs) with
a key made at start and published at /-/npm/v1/keys (needs Python's `cryptography`). Signed
packuments are kept in memory, so only the first request for each pays for the signing.
"""
import argparse
import asyncio
import concurrent.futures
import hashlib
import json
import os
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request

UPSTREAM = os.environ.get("HOARD_BENCH_UPSTREAM", "https://registry.npmjs.org")
ACCEPT = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"


class Signer:
    """The mirror's registry key: signs versions, publishes the key."""

    def __init__(self):
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        self._hashes, self._ec = hashes, ec
        self.key = ec.generate_private_key(ec.SECP256R1())
        spki = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        import base64
        self.b64 = base64.b64encode
        self.keyid = "SHA256:" + base64.b64encode(hashlib.sha256(spki).digest()).decode().rstrip("=")
        self.keys_doc = json.dumps({"keys": [{
            "expires": None, "keyid": self.keyid, "keytype": "ecdsa-sha2-nistp256",
            "scheme": "ecdsa-sha2-nistp256", "key": base64.b64encode(spki).decode()}]}).encode()
        self.signed = {}
        self.lock = threading.Lock()

    def packument(self, path, body):
        with self.lock:
            hit = self.signed.get(path)
        if hit is not None:
            return hit
        try:
            doc = json.loads(body)
        except ValueError:
            return body
        name = doc.get("name", "")
        for version, m in (doc.get("versions") or {}).items():
            dist = m.get("dist") if isinstance(m, dict) else None
            if not isinstance(dist, dict) or not dist.get("integrity"):
                continue
            msg = f"{name}@{version}:{dist['integrity']}".encode()
            sig = self.key.sign(msg, self._ec.ECDSA(self._hashes.SHA256()))
            dist["signatures"] = [{"keyid": self.keyid, "sig": self.b64(sig).decode()}]
        out = json.dumps(doc).encode()
        with self.lock:
            self.signed[path] = out
        return out


class State:
    def __init__(self, cache, base, latency, kbps, offline, sign=False, max_age_s=0):
        self.signer = Signer() if sign else None
        self.max_age_s = max_age_s
        self.aging = True
        self.refreshed = 0
        self.cache = cache
        self.base = base
        self.latency = latency
        self.kbps = kbps
        self.offline = offline
        self.hits = 0
        self.misses = 0
        self.not_modified = 0
        self.connections = 0
        # (path, signed) -> the ETag of the packument served for it (dropped when the packument
        # is fetched again).
        self.etags = {}
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


def read_cached(state, cp):
    with state.lock:
        state.hits += 1
    with open(cp, "rb") as f:
        data = f.read()
    ctype, _, body = data.partition(b"\n")
    return 200, ctype.decode(), body


def aged_out(state, path, cp):
    """A packument kept longer than --max-age-hours (tarballs never age)."""
    if not state.max_age_s or not state.aging or "/-/" in path:
        return False
    try:
        return time.time() - os.path.getmtime(cp) > state.max_age_s
    except OSError:
        return False


def normalize(path):
    """The document a request path names: /@scope%2fname and /@scope/name are the same one."""
    norm = path.replace("%2f", "/").replace("%2F", "/")
    if "/-/" not in norm:
        norm = "/" + norm.lstrip("/").replace("/", "%2f")
    return norm


def servable(state, path, cp, cached):
    """Whether the cached copy at `cp` of `path` (normalized) is served as it is."""
    return cached and (state.offline or not aged_out(state, path, cp))


def get(state, path):
    """(status, content type, body) for path, from cache or upstream (one fetch per path, and
    again once a packument has aged out)."""
    cp = cache_path(state, path)
    cached = os.path.exists(cp)
    if servable(state, path, cp, cached):
        return read_cached(state, cp)
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
        return read_cached(state, cp) if os.path.exists(cp) else get(state, path)
    try:
        status, ctype, body = fetch_upstream(state, path)
        if status != 200 and cached:
            return read_cached(state, cp)
        if status == 200:
            if cached:
                with state.lock:
                    state.refreshed += 1
                    state.etags.pop((path, False), None)
                    state.etags.pop((path, True), None)
                if state.signer is not None:
                    with state.signer.lock:
                        state.signer.signed.pop(path, None)
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


def route(state, path, query, if_none_match):
    """(status, content type, body, etag) for one GET; blocking (disk, upstream, signing)."""
    if path == "/-/hoard-mirror-aging":
        state.aging = query != "on=0"
        return 200, "application/json", json.dumps({"aging": state.aging}).encode(), None
    if path == "/-/hoard-mirror-stats":
        stats = {"hits": state.hits, "misses": state.misses, "not_modified": state.not_modified,
                 "refreshed": state.refreshed, "connections": state.connections}
        return 200, "application/json", json.dumps(stats).encode(), None
    if path == "/-/npm/v1/keys":
        if state.signer is None:
            return 404, "application/json", b'{"error":"no keys"}', None
        return 200, "application/json", state.signer.keys_doc, None
    norm = normalize(path)
    status, ctype, body = get(state, norm)
    if status == 200 and state.signer is not None and "/-/" not in norm:
        body = state.signer.packument(norm, body)
    etag = None
    if status == 200 and "/-/" not in norm:
        # A validator, as the registry gives one: a client whose copy has aged out asks
        # again with If-None-Match and gets 304 instead of the whole document.
        key = (norm, state.signer is not None)
        etag = state.etags.get(key)
        if etag is None:
            etag = '"%s"' % hashlib.sha256(body).hexdigest()[:32]
            state.etags[key] = etag
        if if_none_match == etag:
            with state.lock:
                state.not_modified += 1
            return 304, ctype, b"", etag
    return status, ctype, body, etag


def served_from_disk(state, path):
    """Whether `route` answers this without going upstream or signing (so it can run on the
    event loop: a file read from the page cache)."""
    if path.startswith("/-/hoard-mirror") or path == "/-/npm/v1/keys":
        return True
    norm = normalize(path)
    if state.signer is not None and "/-/" not in norm:
        return False
    cp = cache_path(state, norm)
    return servable(state, norm, cp, os.path.exists(cp))


REASONS = {200: "OK", 304: "Not Modified", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           502: "Bad Gateway"}


async def serve_connection(state, pool, reader, writer):
    """HTTP/1.1 with keep-alive on one connection, one request at a time. One event loop serves
    every connection: a thread per connection (the mirror's first form) made each extra
    connection a client opened cost CPU on the cores the tools are timed on (155 connections
    took ~50% more of the mirror's CPU than 64 for the same 700 requests)."""
    loop = asyncio.get_running_loop()
    state.connections += 1  # only this loop's thread touches it
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            headers = {}
            for line in lines[1:]:
                k, sep, v = line.partition(":")
                if sep:
                    headers[k.strip().lower()] = v.strip()
            if len(parts) != 3 or parts[0] not in ("GET", "HEAD"):
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
                return
            path, _, query = parts[1].partition("?")
            if state.latency:
                await asyncio.sleep(state.latency / 1000.0)
            args = (state, path, query, headers.get("if-none-match"))
            if served_from_disk(state, path):
                status, ctype, body, etag = route(*args)
            else:
                status, ctype, body, etag = await loop.run_in_executor(pool, route, *args)
            out = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", f"Content-Type: {ctype}"]
            if etag is not None:
                out.append(f"ETag: {etag}")
            if status != 304:
                out.append(f"Content-Length: {len(body)}")
            close = headers.get("connection", "").lower() == "close"
            if close:
                out.append("Connection: close")
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))
            if status != 304 and parts[0] == "GET":
                if state.kbps:
                    step = max(1024, state.kbps * 1024 // 20)
                    for i in range(0, len(body), step):
                        writer.write(body[i : i + step])
                        await writer.drain()
                        await asyncio.sleep(0.05)
                else:
                    writer.write(body)
            await writer.drain()
            if close:
                return
    except ConnectionError:
        return
    finally:
        writer.close()


async def serve(state, port):
    # Upstream fetches and signing run here, off the event loop.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=32)
    # A deep accept queue: clients open dozens of connections at once, and a short backlog
    # turns that into SYN retransmits of 1, 3, 7… seconds.
    server = await asyncio.start_server(lambda r, w: serve_connection(state, pool, r, w),
                                        "127.0.0.1", port, backlog=1024, limit=1 << 16)
    print(f"mirror on {state.base} (cache {state.cache})", flush=True)
    async with server:
        await server.serve_forever()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--port", type=int, default=4873)
    ap.add_argument("--latency-ms", type=int, default=0)
    ap.add_argument("--kbps", type=int, default=0, help="bandwidth limit per response, KiB/s")
    ap.add_argument("--offline", action="store_true", help="never go upstream")
    ap.add_argument("--sign", action="store_true", help="sign packuments, serve /-/npm/v1/keys")
    ap.add_argument("--max-age-hours", type=float, default=1,
                    help="fetch a packument again once kept this long (0: never)")
    a = ap.parse_args()
    os.makedirs(a.cache, exist_ok=True)
    base = f"http://127.0.0.1:{a.port}/"
    state = State(a.cache, base, a.latency_ms, a.kbps, a.offline, a.sign, int(a.max_age_hours * 3600))
    try:
        asyncio.run(serve(state, a.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
