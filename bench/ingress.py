"""Ingress benchmark: requests through the ingress controller against the same Service's ClusterIP, in
the same run, with the same client.

Starts `python -m orchestra up --memory` (network on, real Podman, the ingress on a free port of
127.0.0.1, HTTPS off) as a subprocess (bench/proxy.py's harness), applies one busybox httpd pod behind
a Service and an Ingress routing `bench.test` to it, then measures both paths, alternating them in
rounds so drift hits both alike:
- latency: sequential small GETs from this process over one keep-alive connection (http.client; the
  client reconnects whenever the server closes: busybox httpd closes after every answer, so the
  ClusterIP path pays a connection per request, and so does the ingress towards the pod), p50/p99;
- throughput: --clients worker processes, each a keep-alive http.client loop for --seconds, req/s;
- the same two with a new connection per request (`Connection: close`), for the cost without
  client-side keep-alive;
- the orchestra process's CPU time per request during each throughput phase (/proc: steadier than
  the rates when other work shares the machine's cores).
Targets (the ingress issue): added p50 <= 1 ms; ingress throughput >= 50% of the ClusterIP's.
Needs root and no other network-enabled orchestra on the machine (10.96.0.10:53, the ClusterIPs).
Usage: .venv/bin/python bench/ingress.py [--requests 1000] [--seconds 5] [--clients 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time  # wall-clock: a benchmark measures real time
from pathlib import Path
from typing import Any

from proxy import IMAGE, Orchestra, _labelled, pct  # bench/ is on sys.path when run as a script

HOST = "bench.test"
SERVE = "mkdir -p /www && echo ok > /www/small && exec httpd -f -p 8080 -h /www"
MANIFESTS: list[dict[str, Any]] = [
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "bench"},
        "spec": {"selector": {"app": "bench"}, "ports": [{"port": 80, "targetPort": 8080}]},
    },
    {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bench-web", "labels": {"app": "bench"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "web",
                    "image": IMAGE,
                    "command": ["sh", "-c", SERVE],
                    "readinessProbe": {"httpGet": {"path": "/small", "port": 8080}, "periodSeconds": 1},
                }
            ],
        },
    },
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "bench"},
        "spec": {
            "rules": [
                {
                    "host": HOST,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "bench", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ]
        },
    },
]


# --- the client (also run as worker processes: `ingress.py --worker HOST PORT HOSTHDR SECONDS CLOSE`) -------


class Client:
    """Small GETs over http.client: keep-alive unless `close`, reconnecting when the server closes."""

    def __init__(self, addr: tuple[str, int], host: str, *, close: bool = False) -> None:
        self.addr, self.headers = addr, {"Host": host, **({"Connection": "close"} if close else {})}
        self.conn = http.client.HTTPConnection(*addr, timeout=10)

    def get(self) -> None:
        self.conn.request("GET", "/small", headers=self.headers)
        resp = self.conn.getresponse()
        body = resp.read()
        if resp.status != 200 or body != b"ok\n":
            raise RuntimeError(f"{self.addr}: {resp.status} {body[:200]!r}")
        if resp.will_close:
            self.conn.close()  # http.client connects again on the next request

    def close(self) -> None:
        self.conn.close()


def latency_ms(addr: tuple[str, int], host: str, n: int, *, close: bool) -> list[float]:
    client, out = Client(addr, host, close=close), []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            client.get()
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        client.close()
    return out


def worker(argv: list[str]) -> None:
    host, port, host_header, seconds, close = argv[0], int(argv[1]), argv[2], float(argv[3]), argv[4] == "1"
    client, done = Client((host, port), host_header, close=close), 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        client.get()
        done += 1
    print(json.dumps({"requests": done}))


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (/proc/PID/stat fields 14 and 15, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(
    addr: tuple[str, int], host: str, clients: int, seconds: float, *, close: bool
) -> tuple[float, int]:
    """(requests/s, requests) of `clients` worker processes for `seconds`."""
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                addr[0],
                str(addr[1]),
                host,
                str(seconds),
                "1" if close else "0",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(clients)
    ]
    t0 = time.perf_counter()
    done = 0
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 60)
        if proc.returncode:
            raise RuntimeError(f"a client process failed ({proc.returncode})")
        done += json.loads(out)["requests"]
    return done / max(time.perf_counter() - t0, seconds), done


# --- main ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(paths: dict[str, tuple[tuple[str, int], str]], args: argparse.Namespace, pid: int, *,
            close: bool) -> dict[str, Any]:
    lat: dict[str, list[float]] = {k: [] for k in paths}
    rps: dict[str, list[float]] = {k: [] for k in paths}
    cpu: dict[str, list[float]] = {k: [] for k in paths}  # orchestra's CPU seconds per request
    for addr, host in paths.values():
        latency_ms(addr, host, 50, close=close)  # warm-up, discarded
    for _ in range(args.rounds):
        for k, (addr, host) in paths.items():
            lat[k] += latency_ms(addr, host, args.requests // args.rounds, close=close)
        for k, (addr, host) in paths.items():
            before = cpu_seconds(pid)
            rate, done = throughput(addr, host, args.clients, args.seconds / args.rounds, close=close)
            rps[k].append(rate)
            cpu[k].append((cpu_seconds(pid) - before) / max(done, 1))
    return {k: {"p50": pct(lat[k], 0.5), "p99": pct(lat[k], 0.99), "rps": statistics.mean(rps[k]),
                "cpu": statistics.mean(cpu[k]) * 1e6} for k in paths}


def report(title: str, res: dict[str, Any], *, targets: bool) -> None:
    c, i = res["clusterip"], res["ingress"]
    added, ratio = i["p50"] - c["p50"], i["rps"] / c["rps"]
    rows = [
        (
            "p50 (ms)",
            f"{c['p50']:.3f}",
            f"{i['p50']:.3f}",
            f"{added:+.3f} ms",
            ("PASS" if added <= 1.0 else "FAIL (target +1 ms)") if targets else "",
        ),
        ("p99 (ms)", f"{c['p99']:.3f}", f"{i['p99']:.3f}", f"{i['p99'] - c['p99']:+.3f} ms", ""),
        (
            "requests/s",
            f"{c['rps']:,.0f}",
            f"{i['rps']:,.0f}",
            f"{ratio:.0%}",
            ("PASS" if ratio >= 0.5 else "FAIL (target 50%)") if targets else "",
        ),
        (
            "orchestra CPU µs/request",
            f"{c['cpu']:.0f}",
            f"{i['cpu']:.0f}",
            f"{i['cpu'] - c['cpu']:+.0f} µs",
            "",
        ),
    ]
    head = ("", "ClusterIP", "ingress", "difference", "target")
    widths = [max(len(str(r[n])) for r in [head, *rows]) for n in range(5)]
    print(f"\n{title}")
    for r in [head, *rows]:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(r, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000, help="sequential GETs per path (latency)")
    parser.add_argument(
        "--seconds", type=float, default=6.0, help="load time per path (throughput), over all rounds"
    )
    parser.add_argument("--clients", type=int, default=2, help="client processes for throughput")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the state directory")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="orchestra-bench-ingress-"))
    port = free_port()
    orch = Orchestra(tmp, ("--ingress-listen", f"127.0.0.1:{port}", "--ingress-tls-listen", "off"))
    try:
        t0 = time.monotonic()
        orch.wait_ready()
        docs = [_labelled(d) for d in MANIFESTS]
        orch.kubectl(
            "apply",
            "--validate=false",
            "-f",
            "-",  # a v1 List: kubectl validates it with OpenAPI v2
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}),
        )
        orch.wait_pod_ready("bench-web")
        cluster_ip = orch.get("service", "bench")["spec"]["clusterIP"]
        paths = {"clusterip": ((cluster_ip, 80), "bench"), "ingress": (("127.0.0.1", port), HOST)}
        deadline = time.monotonic() + 30
        for addr, host in paths.values():  # the proxy and the ingress learn the endpoint a moment after Ready
            while True:
                try:
                    latency_ms(addr, host, 1, close=True)
                    break
                except (OSError, RuntimeError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        print(
            f"cluster + pod ready in {time.monotonic() - t0:.1f} s; ClusterIP {cluster_ip}:80, "
            f"ingress 127.0.0.1:{port}"
        )
        keep_alive = measure(paths, args, orch.proc.pid, close=False)
        per_request = measure(paths, args, orch.proc.pid, close=True)
    finally:
        try:
            orch.kubectl("delete", "ingress", "bench", "--wait=false")
        except RuntimeError as exc:
            print(f"(deleting the Ingress failed: {exc})", file=sys.stderr)
        orch.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"\n{args.requests} sequential GETs per path for latency; {args.clients} client processes for "
        f"{args.seconds:g} s per path for throughput; {args.rounds} alternating rounds; "
        "backend: busybox httpd (closes after every answer)"
    )
    report("keep-alive client (reconnects when the server closes)", keep_alive, targets=True)
    report("a new connection per request (Connection: close)", per_request, targets=False)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2:])
    else:
        main()
