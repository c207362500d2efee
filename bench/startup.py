"""Start-up benchmark: `orchestra up` to API ready (median of N runs), and idle RSS with the examples.

Each run starts `orchestra up` as a fresh process on a fresh state directory and polls /readyz every
5 ms; "ready" is the first 200. Then one more run applies examples/ and, once every example pod
has settled, reports the whole process's RSS after 10 s idle (the server process only: Podman's
own processes are not orchestra's). Usage: .venv/bin/python bench/startup.py [--runs 10] [--no-podman]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time  # wall-clock: a benchmark measures real time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent


def orchestra_cmd(state: Path, port: int, extra: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "orchestra",
        "up",
        "--state-dir",
        str(state),
        "--listen",
        f"127.0.0.1:{port}",
        "--no-dashboard",
        "--ingress-listen",  # ports 80/443 may be taken on this host; start-up is measured without them
        "off",
        "--ingress-tls-listen",
        "off",
        *extra,
    ]


def wait_ready(state: Path, port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> float:
    t0 = time.perf_counter()
    ctx: ssl.SSLContext | None = None
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"orchestra exited with {proc.returncode}")
        ca = state / "pki" / "ca.crt"
        if ca.exists() and ctx is None:
            try:
                ctx = ssl.create_default_context(cafile=str(ca))
            except (ssl.SSLError, OSError):
                ctx = None
        if ctx is not None:
            try:
                c = http.client.HTTPSConnection("127.0.0.1", port, timeout=1, context=ctx)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    return time.perf_counter() - t0
            except (OSError, ssl.SSLError, http.client.HTTPException):
                pass
        time.sleep(0.005)
    raise SystemExit("API did not become ready")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(60)  # --stop-pods: pods that ignore SIGTERM take their grace period
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def api_get(state: Path, port: int, path: str) -> dict:
    cfg = json.loads((state / "kubeconfig").read_text())
    token = cfg["users"][0]["user"]["token"]
    ctx = ssl.create_default_context(cafile=str(state / "pki" / "ca.crt"))
    c = http.client.HTTPSConnection(
        urlparse(cfg["clusters"][0]["cluster"]["server"]).netloc, timeout=10, context=ctx
    )
    c.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    return json.loads(c.getresponse().read())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--no-podman", action="store_true")
    args = ap.parse_args()
    extra = ["--no-podman"] if args.no_podman or not shutil.which("podman") else []
    times = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as d:
            port = free_port()
            proc = subprocess.Popen(
                orchestra_cmd(Path(d), port, extra),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=ROOT,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
            try:
                times.append(wait_ready(Path(d), port, proc))
            finally:
                stop(proc)
    print(
        f"up -> API ready: median {statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms, "
        f"max {max(times) * 1000:.0f} ms over {len(times)} runs (target <= 1000 ms; k3d ~13 s, kind ~14 s)"
    )

    with tempfile.TemporaryDirectory() as d:
        state, port = Path(d), free_port()
        # --stop-pods: the examples' Podman pods go with this throw-away cluster and its state directory
        proc = subprocess.Popen(
            orchestra_cmd(state, port, [*extra, "--stop-pods", "--apply", str(ROOT / "examples")]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        try:
            wait_ready(state, port, proc)
            deadline = time.perf_counter() + 90
            phases: dict[str, int] = {}
            while time.perf_counter() < deadline:
                pods = api_get(state, port, "/api/v1/pods").get("items", [])
                phases = {}
                for p in pods:
                    ph = p.get("status", {}).get("phase", "?")
                    phases[ph] = phases.get(ph, 0) + 1
                if pods and not phases.get("Pending"):
                    break
                time.sleep(1)
            time.sleep(10)
            print(
                f"idle RSS with examples/ applied: {rss_mb(proc.pid):.0f} MB "
                f"(pods by phase: {phases}; target <= 150 MB, k3s idles at 300-500 MB)"
            )
        finally:
            stop(proc)


if __name__ == "__main__":
    main()
