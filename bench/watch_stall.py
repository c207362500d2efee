"""Stalled-watch benchmark: server RSS while many watches of a big collection never read.

Starts `orchestra up --no-podman --no-network --no-dashboard` (durable store) as a subprocess with its
own state directory, creates --objects ConfigMaps of about --size bytes each, then opens --watches
watches of that collection from resourceVersion unset (so each starts with the whole list as ADDED
events) over HTTPS on raw TLS sockets with a small receive buffer that never read. It prints the
server's RSS (/proc/PID/status) before, during the stall (peak), after --writes updates made during
the stall (which close watchers that fell too far behind) and after the client closes the watches;
the latency of a normal GET during the stall; and, to tell live objects from memory the allocator
keeps, Python's allocated block count and the RSS after glibc's malloc_trim(0) (asked of the server
with SIGUSR1: a small probe wraps the CLI). Target: RSS under 300 MiB throughout.
Usage: .venv/bin/python bench/watch_stall.py [--objects 5000] [--watches 200] [--stall 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time  # wall-clock: a benchmark measures real time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent

# The server process: the `orchestra up` CLI, plus a SIGUSR1 probe that writes the number of live
# Python allocations and the RSS before/after malloc_trim(0) to <state>/probe.json.
PROBE = """
import ctypes, gc, json, signal, sys
from pathlib import Path
state = Path(sys.argv[sys.argv.index("--state-dir") + 1])

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0

def probe(signum, frame):
    gc.collect()
    before = rss()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    out = {"blocks": sys.getallocatedblocks(), "rss_before_trim": before, "rss_after_trim": rss()}
    (state / "probe.json").write_text(json.dumps(out))

signal.signal(signal.SIGUSR1, probe)
from orchestra.cli.main import cli
sys.argv[0] = "orchestra"
cli()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Api:
    def __init__(self, state: Path) -> None:
        cfg = json.loads((state / "kubeconfig").read_text())
        self.netloc = urlparse(cfg["clusters"][0]["cluster"]["server"]).netloc
        self.token = cfg["users"][0]["user"]["token"]
        self.ctx = ssl.create_default_context(cafile=str(state / "pki" / "ca.crt"))

    def conn(self, timeout: float = 30) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.netloc, timeout=timeout, context=self.ctx)

    def request(self, conn: http.client.HTTPSConnection, method: str, path: str, body: object = None) -> int:
        data = None if body is None else json.dumps(body)
        conn.request(method, path, body=data, headers={"Authorization": f"Bearer {self.token}",
                                                         "Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        return resp.status


def start_server(state: Path) -> tuple[subprocess.Popen[bytes], Api]:
    port = free_port()
    cmd = [sys.executable, "-c", PROBE, "up", "--state-dir", str(state), "--listen", f"127.0.0.1:{port}",
           "--no-podman", "--no-network", "--no-dashboard"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"orchestra exited with {proc.returncode}")
        if (state / "kubeconfig").exists():
            api = Api(state)
            try:
                c = api.conn(2)
                if api.request(c, "GET", "/readyz") == 200:
                    return proc, api
            except (OSError, http.client.HTTPException):
                pass  # not listening yet
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


def in_threads(n: int, work, threads: int = 4) -> None:  # type: ignore[no-untyped-def]
    def run(part: range) -> None:
        work(part)

    ts = [threading.Thread(target=run, args=(range(i, n, threads),)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def create_objects(api: Api, n: int, size: int) -> None:
    def work(part: range) -> None:
        c = api.conn()
        for i in part:
            body = {"metadata": {"name": f"cm-{i:05d}", "labels": {"bench": "stall"}},
                    "data": {"payload": "x" * size}}
            if api.request(c, "POST", "/api/v1/namespaces/default/configmaps", body) != 201:
                raise SystemExit(f"create cm-{i} failed")

    in_threads(n, work)


def update_objects(api: Api, n: int) -> None:
    def work(part: range) -> None:
        c = api.conn()
        for i in part:
            patch = {"data": {"rev": str(i)}}
            c.request("PATCH", f"/api/v1/namespaces/default/configmaps/cm-{i:05d}", body=json.dumps(patch),
                      headers={"Authorization": f"Bearer {api.token}",
                               "Content-Type": "application/merge-patch+json"})
            c.getresponse().read()

    in_threads(n, work)


def stalled_watch(api: Api, rcvbuf: int) -> ssl.SSLSocket:
    """A TLS socket that asks for a watch from "now" (the whole list first) and never reads."""
    host, port = api.netloc.rsplit(":", 1)
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: sets the window
    raw.connect((host, int(port)))
    tls = api.ctx.wrap_socket(raw, server_hostname=host)
    tls.sendall((f"GET /api/v1/namespaces/default/configmaps?watch=true HTTP/1.1\r\nHost: {api.netloc}\r\n"
                 f"Authorization: Bearer {api.token}\r\nAccept: application/json\r\n\r\n").encode())
    return tls


def get_latency(api: Api, n: int = 20) -> tuple[float, float]:
    c = api.conn()
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        if api.request(c, "GET", f"/api/v1/namespaces/default/configmaps/cm-{i:05d}") != 200:
            raise SystemExit("GET failed during the stall")
        lat.append(time.perf_counter() - t0)
        time.sleep(0.05)
    return statistics.median(lat) * 1000, max(lat) * 1000


def watch_peak(pid: int, seconds: float) -> float:
    peak, stop = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < stop:
        peak = max(peak, rss_mb(pid))
        time.sleep(0.25)
    return peak


def probe(proc: subprocess.Popen[bytes], state: Path) -> dict[str, float]:
    out = state / "probe.json"
    out.unlink(missing_ok=True)
    proc.send_signal(signal.SIGUSR1)
    for _ in range(200):
        if out.exists():
            try:
                return dict(json.loads(out.read_text()))
            except json.JSONDecodeError:
                pass  # still being written
        time.sleep(0.05)
    return {}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=5000)
    ap.add_argument("--size", type=int, default=1024, help="bytes of data per ConfigMap")
    ap.add_argument("--watches", type=int, default=200)
    ap.add_argument("--stall", type=float, default=10.0, help="seconds the watches stay open unread")
    ap.add_argument("--writes", type=int, default=1500, help="updates made during the stall (0: none)")
    ap.add_argument("--rcvbuf", type=int, default=4096, help="SO_RCVBUF of the watch sockets")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="watch-stall-") as d:
        state = Path(d)
        proc, api = start_server(state)
        try:
            pid = proc.pid
            print(f"server pid {pid}: RSS at start {rss_mb(pid):.0f} MiB")
            t0 = time.perf_counter()
            create_objects(api, args.objects, args.size)
            print(f"created {args.objects} ConfigMaps of ~{args.size} B in {time.perf_counter() - t0:.1f} s: "
                  f"RSS {rss_mb(pid):.0f} MiB")
            base = probe(proc, state)
            fds0 = open_fds(pid)
            t0 = time.perf_counter()
            socks = [stalled_watch(api, args.rcvbuf) for _ in range(args.watches)]
            print(f"opened {len(socks)} stalled watches in {time.perf_counter() - t0:.1f} s "
                  f"(SO_RCVBUF {args.rcvbuf}); server fds {fds0} -> {open_fds(pid)}")
            peak = watch_peak(pid, args.stall / 2)
            p50, pmax = get_latency(api)
            peak = max(peak, watch_peak(pid, args.stall / 2))
            print(f"during the stall: RSS peak {peak:.0f} MiB, now {rss_mb(pid):.0f} MiB; "
                  f"GET p50 {p50:.1f} ms, max {pmax:.1f} ms")
            if args.writes:
                t0 = time.perf_counter()
                update_objects(api, min(args.writes, args.objects))
                peak = max(peak, watch_peak(pid, 5))
                print(f"after {min(args.writes, args.objects)} updates during the stall "
                      f"({time.perf_counter() - t0:.1f} s): RSS {rss_mb(pid):.0f} MiB (peak {peak:.0f}); "
                      f"server fds {open_fds(pid)} (watch connections the server closed: "
                      f"{max(0, fds0 + len(socks) - open_fds(pid))})")
            for s in socks:
                s.close()
            time.sleep(3)
            after = rss_mb(pid)
            p = probe(proc, state)
            print(f"after the watches closed: RSS {after:.0f} MiB; server fds {open_fds(pid)}")
            if base and p:
                print(f"Python allocated blocks: {base['blocks']:.0f} before the watches, "
                      f"{p['blocks']:.0f} after; "
                      f"RSS after malloc_trim(0): {p['rss_after_trim']:.0f} MiB")
            verdict = "OK" if peak < 300 and after < 300 else "OVER"
            print(f"RSS peak {peak:.0f} MiB, after close {after:.0f} MiB (target < 300 MiB): {verdict}")
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
