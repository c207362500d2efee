"""Service proxy benchmark: the ClusterIP path against direct pod-IP access, in the same run.

Starts `python -m orchestra up --memory` (network on, real Podman) as a subprocess, applies one
busybox httpd pod behind a Service (so both paths reach the same server) and a client pod, then
measures, alternating the two paths in rounds so drift hits both alike:
- latency: small HTTP/1.0 GETs, sequential, a new TCP connection each, from the host (p50/p99);
- throughput: 1 MiB GETs, from the host (MB/s, median transfer and whole run);
- from inside the client pod: the same through busybox wget (per-request wall time incl. wget);
- cluster DNS: queries per second from the host (dnspython wire format, N concurrent UDP clients,
  a fixed set of cluster names).
Targets (issue 5): added p50 latency <= 1 ms; ClusterIP throughput >= 50% of direct for 1 MiB.
Needs root and no other network-enabled orchestra on the machine (10.96.0.10:53, the ClusterIPs).
Usage: .venv/bin/python bench/proxy.py [--requests 500] [--transfers 40] [--dns-seconds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time  # wall-clock: a benchmark measures real time
from pathlib import Path
from typing import Any

import dns.message
import dns.rdatatype
import trio

KUBECTL = shutil.which("kubectl.1.32") or "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
IMAGE = "localhost/busybox:latest"
DNS_IP = "10.96.0.10"
MIB = 1024 * 1024
SERVE = ("mkdir -p /www && echo ok > /www/small && head -c 1048576 /dev/zero > /www/1m && "
         "exec httpd -f -p 8080 -h /www")
SLEEP = "trap 'exit 0' TERM; sleep 3600 & wait"
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
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bench-client"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": IMAGE, "command": ["sh", "-c", SLEEP]}],
        },
    },
]
DNS_NAMES = ["bench.default.svc.cluster.local.", "kubernetes.default.svc.cluster.local.",
             "kube-dns.kube-system.svc.cluster.local.", "_http._tcp.bench.default.svc.cluster.local.",
             "missing.default.svc.cluster.local."]


# --- the cluster ---------------------------------------------------------------------------------


class Orchestra:
    """`orchestra up` in a subprocess, with kubectl pointed at it."""

    def __init__(self, state: Path, extra: tuple[str, ...] = ()) -> None:
        """`extra`: more `orchestra up` options (bench/ingress.py's listeners: the last of a repeated
        option wins, so they override the ingress being off here; ports 80/443 may be taken)."""
        self.state = state
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = (state / "orchestra.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestra", "up", "--memory", "--state-dir", str(state / "s"),
             "--listen", f"127.0.0.1:{self.port}", "--no-dashboard", "--timings", "fast",
             "--ingress-listen", "off", "--ingress-tls-listen", "off", *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.env = {**os.environ, "KUBECONFIG": str(state / "s" / "kubeconfig"), "HOME": str(state)}

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        res = subprocess.run(
            [KUBECTL, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
            check=False,
        )
        if res.returncode:
            raise RuntimeError(f"kubectl {' '.join(args)}: {res.stderr.strip()}")
        return res.stdout

    def wait_ready(self, limit: float = 90) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"orchestra up exited ({self.proc.returncode}); see {self.log.name}:\n"
                                   + Path(self.log.name).read_text()[-3000:])
            if (self.state / "s" / "kubeconfig").exists():
                try:
                    self.kubectl("get", "--raw", "/readyz")
                    return
                except RuntimeError:
                    pass  # not serving yet
            time.sleep(0.2)
        raise RuntimeError("orchestra up did not become ready")

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return dict(json.loads(self.kubectl("get", kind, name, "-o", "json")))

    def wait_pod_ready(self, name: str, limit: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            pod = self.get("pod", name)
            conds = (pod.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
                return pod
            time.sleep(0.3)
        raise RuntimeError(f"pod {name} not ready after {limit} s")

    def pod_exec(self, pod: dict[str, Any], script: str) -> str:
        """Run `sh -c script` in the pod's container through the podman CLI (same storage)."""
        conf = self.state / "s" / "podman" / "containers.conf"
        env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        uid = pod["metadata"]["uid"]
        ids = subprocess.run(["podman", "ps", "-q", "--filter", f"label=orchestra.io/pod-uid={uid}",
                              "--filter", "label=orchestra.io/container-name"],
                             capture_output=True, text=True, env=env, check=True).stdout.split()
        out = subprocess.run(["podman", "exec", ids[0], "sh", "-c", script], capture_output=True, text=True,
                             env=env, timeout=300, check=False)
        return out.stdout + out.stderr

    def stop(self) -> None:
        try:
            self.kubectl("delete", "pod,service", "-l", "bench-run=1", "--wait=true", "--timeout=30s",
                         "--grace-period=0")
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"(clean-up through the API failed: {exc})", file=sys.stderr)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # run_cluster removes the service route on the way out
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


# --- host-side measurements ----------------------------------------------------------------------


def http_get(addr: tuple[str, int], path: str) -> int:
    with socket.create_connection(addr, timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n".encode())
        n = 0
        while chunk := s.recv(1 << 20):
            n += len(chunk)
        return n


def latency_ms(addr: tuple[str, int], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        got = http_get(addr, "/small")
        out.append((time.perf_counter() - t0) * 1000)
        assert got > 0
    return out


def transfer_s(addr: tuple[str, int], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        got = http_get(addr, "/1m")
        out.append(time.perf_counter() - t0)
        assert got > MIB, got
    return out


def alternate(
    fn: Any, paths: dict[str, tuple[str, int]], total: int, rounds: int = 10
) -> dict[str, list[float]]:
    res: dict[str, list[float]] = {k: [] for k in paths}
    for addr in paths.values():
        fn(addr, max(3, total // 20))  # warm-up, discarded
    for _ in range(rounds):
        for k, addr in paths.items():
            res[k] += fn(addr, max(1, total // rounds))
    return res


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


# --- DNS -----------------------------------------------------------------------------------------


async def dns_qps(seconds: float, concurrency: int) -> tuple[float, int, int]:
    wires = [dns.message.make_query(n, dns.rdatatype.SRV if n.startswith("_") else dns.rdatatype.A).to_wire()
             for n in DNS_NAMES]
    done = 0
    lost = 0

    async def client(i: int) -> None:
        nonlocal done, lost
        with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sock:
            await sock.connect((DNS_IP, 53))
            k = i
            while True:
                await sock.send(wires[k % len(wires)])
                k += 1
                with trio.move_on_after(1) as scope:
                    await sock.recv(4096)
                    done += 1
                if scope.cancelled_caught:
                    lost += 1

    t0 = trio.current_time()
    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:
            for i in range(concurrency):
                nursery.start_soon(client, i)
    return done / (trio.current_time() - t0), done, lost


# --- main ----------------------------------------------------------------------------------------


def in_pod(orch: Orchestra, client: dict[str, Any], url: str, n: int, path: str) -> float:
    """Mean wall time of one `wget` of `path` in the client pod, in ms (from /proc/uptime, 10 ms
    resolution over the whole loop)."""
    script = (f"wget -qO /dev/null {url}{path}; read a _ < /proc/uptime; i=0; "
              f"while [ $i -lt {n} ]; do wget -qO /dev/null {url}{path} || echo FAIL; i=$((i+1)); done; "
              "read b _ < /proc/uptime; echo \"$a $b\"")
    out = orch.pod_exec(client, script).split()
    if "FAIL" in out:
        raise RuntimeError(f"wget {url}{path} failed in the client pod")
    a, b = float(out[-2]), float(out[-1])
    return (b - a) * 1000 / n


def _labelled(doc: dict[str, Any]) -> dict[str, Any]:
    meta = dict(doc["metadata"])
    meta["labels"] = {**meta.get("labels", {}), "bench-run": "1"}  # what clean-up deletes
    return {**doc, "metadata": meta}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=500, help="small GETs per path (latency)")
    parser.add_argument("--transfers", type=int, default=40, help="1 MiB GETs per path (throughput)")
    parser.add_argument(
        "--pod-requests", type=int, default=100, help="wget runs per path inside the client pod"
    )
    parser.add_argument("--dns-seconds", type=float, default=3.0)
    parser.add_argument("--dns-concurrency", type=int, default=32)
    parser.add_argument("--keep", action="store_true", help="keep the state directory")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="orchestra-bench-proxy-"))
    orch = Orchestra(tmp)
    try:
        t0 = time.monotonic()
        orch.wait_ready()
        docs = [_labelled(d) for d in MANIFESTS]
        orch.kubectl(
            "apply",
            "--validate=false",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}),
        )
        pod = orch.wait_pod_ready("bench-web")
        client = orch.wait_pod_ready("bench-client")
        svc = orch.get("service", "bench")
        cluster_ip, pod_ip = svc["spec"]["clusterIP"], pod["status"]["podIP"]
        paths = {"direct": (pod_ip, 8080), "clusterip": (cluster_ip, 80)}
        deadline = time.monotonic() + 30
        while True:  # the proxy learns the endpoint from the EndpointSlice a moment after Ready
            try:
                http_get(paths["clusterip"], "/small")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        print(
            f"cluster + pods ready in {time.monotonic() - t0:.1f} s; "
            f"pod {pod_ip}:8080, ClusterIP {cluster_ip}:80"
        )

        lat = alternate(latency_ms, paths, args.requests)
        xfer = alternate(transfer_s, paths, args.transfers)
        pod_lat = {
            k: in_pod(orch, client, f"http://{a[0]}:{a[1]}", args.pod_requests, "/small")
            for k, a in paths.items()
        }
        pod_xfer = {k: in_pod(orch, client, f"http://{a[0]}:{a[1]}", max(20, args.transfers), "/1m")
                    for k, a in paths.items()}
        qps, answered, lost = trio.run(dns_qps, args.dns_seconds, args.dns_concurrency)
    finally:
        orch.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    def mbps(times: list[float]) -> tuple[float, float]:
        return MIB / statistics.median(times) / 1e6, len(times) * MIB / sum(times) / 1e6

    d50, c50 = pct(lat["direct"], 0.5), pct(lat["clusterip"], 0.5)
    d99, c99 = pct(lat["direct"], 0.99), pct(lat["clusterip"], 0.99)
    (dmed, dall), (cmed, call) = mbps(xfer["direct"]), mbps(xfer["clusterip"])
    ratio = call / dall
    rows = [
        ("host: small GET p50 (ms)", f"{d50:.3f}", f"{c50:.3f}", f"+{c50 - d50:.3f} ms",
         "PASS" if c50 - d50 <= 1.0 else "FAIL (target +1 ms)"),
        ("host: small GET p99 (ms)", f"{d99:.3f}", f"{c99:.3f}", f"+{c99 - d99:.3f} ms", ""),
        ("host: 1 MiB GET, median (MB/s)", f"{dmed:.0f}", f"{cmed:.0f}", f"{cmed / dmed:.0%}", ""),
        ("host: 1 MiB GET, whole run (MB/s)", f"{dall:.0f}", f"{call:.0f}", f"{ratio:.0%}",
         "PASS" if ratio >= 0.5 else "FAIL (target 50%)"),
        ("pod: wget small, mean (ms)", f"{pod_lat['direct']:.2f}", f"{pod_lat['clusterip']:.2f}",
         f"+{pod_lat['clusterip'] - pod_lat['direct']:.2f} ms", ""),
        ("pod: wget 1 MiB, mean (ms)", f"{pod_xfer['direct']:.2f}", f"{pod_xfer['clusterip']:.2f}",
         f"+{pod_xfer['clusterip'] - pod_xfer['direct']:.2f} ms", ""),
    ]
    head = ("", "direct pod IP", "ClusterIP", "difference", "target")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(5)]
    print(
        f"\n{args.requests} small GETs and {args.transfers} 1 MiB GETs per path from the host, "
        f"alternated in 10 rounds; {args.pod_requests} wget runs per path in the client pod"
    )
    for r in [head, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    print(
        f"\ncluster DNS: {qps:,.0f} queries/s ({answered} answered, {lost} unanswered in "
        f"{args.dns_seconds:g} s, {args.dns_concurrency} concurrent UDP clients, {len(DNS_NAMES)} names)"
    )


if __name__ == "__main__":
    main()
