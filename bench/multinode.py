"""Multi-node benchmark: how fast a node joins, and pod-to-pod traffic across nodes against the same pair
of pods on one node, in the same run.

Starts `python -m orchestra up --memory --nodes 3 --stop-pods` (network on, real Podman: the host's node
and worker-1, worker-2, each in its own network namespace) as a subprocess (bench/proxy.py's harness).
- join: --joins times, a new node in a network namespace of its own on the same link
  (`nsenter --net=... orchestra join https://10.243.0.1:PORT --token ...`, a fresh state dir each), timed
  from the process's start to its Node's Ready condition as the API shows it (polled every 20 ms); the
  join includes Python's start, the CSR, its own Podman service and network;
- pod-to-pod: a server pod on worker-1, one client pod beside it on worker-1 and one on worker-2. The
  traffic runs in the pods' own network namespaces (nsenter into the containers' net namespace, with
  this host's Python: busybox has no load generator), so it takes the pods' real path: veth, the node's
  bridge, and across nodes the host-gw route over the link. Latency: --requests sequential 64-byte
  request/response pairs on one TCP connection (p50/p99); throughput: --mib MiB sent on one connection.
  Same-node and cross-node alternate in --rounds rounds so drift hits both alike.
Targets (the multi-node issue): join to Ready <= 2 s; cross-node throughput >= 80 % of same-node.
Needs root and no other network-enabled orchestra on the machine (10.96.0.10:53, the ClusterIPs).
Usage: .venv/bin/python bench/multinode.py [--joins 3] [--requests 2000] [--mib 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time  # wall-clock: a benchmark measures real time
from pathlib import Path
from typing import Any

from proxy import IMAGE, Orchestra  # bench/ is on sys.path when run as a script

PORT = 5201
SERVER = f"""
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", {PORT}))
s.listen(16)
def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    mode = c.recv(1)
    if mode == b"e":  # echo 64-byte messages
        while (m := c.recv(64)):
            c.sendall(m)
    else:  # sink
        while c.recv(1 << 20):
            pass
        c.sendall(b"k")
    c.close()
print("ready", flush=True)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
"""
CLIENT = """
import json, socket, sys, time
host, port, requests, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
c = socket.create_connection((host, port)); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
c.sendall(b"e"); msg = b"x" * 64; lat = []
for _ in range(requests):
    t0 = time.perf_counter(); c.sendall(msg); got = 0
    while got < 64:
        got += len(c.recv(64 - got))
    lat.append((time.perf_counter() - t0) * 1e6)
c.close()
c = socket.create_connection((host, port)); c.sendall(b"s"); block = b"\\0" * (1 << 20)
t0 = time.perf_counter()
for _ in range(mib):
    c.sendall(block)
c.shutdown(socket.SHUT_WR); c.recv(1); secs = time.perf_counter() - t0
print(json.dumps({"lat_us": lat, "mib_s": mib / secs}))
"""


def sleeper(name: str, node: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench-run": "1"}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": IMAGE,
                                     "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]}]}}


class Bench:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.orch = Orchestra(base, ("--nodes", "3", "--stop-pods"))
        self.nodes = base / "s" / "nodes"

    def pid_of(self, pod: dict[str, Any]) -> int:
        """The host pid of the pod's container (its network namespace is the pod's)."""
        node = pod["spec"]["nodeName"]
        cid = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[-1]
        sock = self.nodes / node / "podman" / "podman.sock"
        out = subprocess.run(["podman", "--url", f"unix://{sock}", "inspect", cid, "--format",
                              "{{.State.Pid}}"], capture_output=True, text=True, check=True, timeout=30)
        return int(out.stdout.strip())

    def node_ready(self, name: str) -> bool:
        try:
            node = json.loads(self.orch.kubectl("get", "node", name, "-o", "json"))
        except RuntimeError:
            return False
        conditions = node["status"].get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def wait_nodes(self, names: list[str], limit: float = 180) -> None:
        deadline = time.monotonic() + limit
        while not all(self.node_ready(n) for n in names):
            if time.monotonic() > deadline:
                raise RuntimeError(f"nodes {names} not Ready after {limit} s")
            time.sleep(0.5)

    def join_times(self, joins: int) -> list[float]:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        from orchestra.net.nodelinks import NodeLinks, netns_name

        links = NodeLinks()
        token = self._token()
        times, names = [], []
        try:
            for i in range(joins):
                name = f"bench-join-{i}"
                names.append(name)
                links.ensure_node(name, 10 + i)
                state = Path(tempfile.mkdtemp(prefix="bj", dir="/tmp"))
                cmd = ["nsenter", f"--net=/run/netns/{netns_name(name)}", sys.executable, "-m", "orchestra",
                       "join",
                       f"https://{links.host_address}:{self.orch.port}", "--token", token,
                       "--node-name", name, "--state-dir", str(state / "n"), "--stop-pods"]
                with (state / "join.log").open("wb") as log:
                    t0 = time.perf_counter()
                    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
                    try:
                        while not self.node_ready(name):
                            if proc.poll() is not None or time.perf_counter() - t0 > 120:
                                raise RuntimeError(f"join of {name} failed; see {state / 'join.log'}")
                            time.sleep(0.02)
                        times.append(time.perf_counter() - t0)
                    finally:
                        proc.send_signal(signal.SIGTERM)
                        proc.wait(60)
                self.orch.kubectl("delete", "node", name, "--wait=false")
        finally:
            for name in names:
                subprocess.run(["ip", "netns", "del", netns_name(name)], check=False)
        return times

    def _token(self) -> str:
        out = subprocess.run([sys.executable, "-m", "orchestra", "token", "create", "--ttl", "1h",
                              "--kubeconfig", str(self.base / "s" / "kubeconfig")],
                             capture_output=True, text=True, check=True, timeout=60)
        return out.stdout.strip().splitlines()[-1]

    def pod_to_pod(self, requests: int, mib: int, rounds: int) -> dict[str, dict[str, list[float]]]:
        for name, node in (("srv", "worker-1"), ("cli-same", "worker-1"), ("cli-cross", "worker-2")):
            self.orch.kubectl("apply", "-f", "-", stdin=json.dumps(sleeper(name, node)))
        pods = {n: self.orch.wait_pod_ready(n) for n in ("srv", "cli-same", "cli-cross")}
        srv_ip = pods["srv"]["status"]["podIP"]
        server = subprocess.Popen(["nsenter", "-t", str(self.pid_of(pods["srv"])), "-n", sys.executable, "-c",
                                   SERVER], stdout=subprocess.PIPE, text=True)
        results: dict[str, dict[str, list[float]]] = {k: {"p50": [], "p99": [], "mib_s": []}
                                                      for k in ("same node", "cross node")}
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            for _ in range(rounds):
                for label, pod in (("same node", "cli-same"), ("cross node", "cli-cross")):
                    out = subprocess.run(["nsenter", "-t", str(self.pid_of(pods[pod])), "-n", sys.executable,
                                          "-c", CLIENT, srv_ip, str(PORT), str(requests), str(mib)],
                                         capture_output=True, text=True, check=True, timeout=600)
                    got = json.loads(out.stdout)
                    lat = sorted(got["lat_us"])
                    results[label]["p50"].append(lat[len(lat) // 2])
                    results[label]["p99"].append(lat[int(len(lat) * 0.99)])
                    results[label]["mib_s"].append(got["mib_s"])
        finally:
            server.kill()
        return results

    def stop(self) -> None:
        if self.orch.proc.poll() is None:
            self.orch.proc.send_signal(signal.SIGINT)
            try:
                self.orch.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.orch.proc.kill()
        self.orch.log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--joins", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("nsenter") is None:
        sys.exit("needs nsenter (util-linux)")
    base = Path(tempfile.mkdtemp(prefix="mnb", dir="/tmp"))
    bench = Bench(base)
    try:
        bench.orch.wait_ready()
        t0 = time.perf_counter()
        bench.wait_nodes(["worker-1", "worker-2"])
        print(f"orchestra up --nodes 3: both workers Ready {time.perf_counter() - t0:.1f} s after the API")
        joins = bench.join_times(args.joins)
        print(f"join -> Node Ready: median {statistics.median(joins):.2f} s "
              f"(runs: {', '.join(f'{t:.2f}' for t in joins)}; target <= 2 s)")
        res = bench.pod_to_pod(args.requests, args.mib, args.rounds)
        for label, r in res.items():
            p50, p99, rate = (statistics.median(r[k]) for k in ("p50", "p99", "mib_s"))
            print(f"{label:>10}: p50 {p50:7.1f} us  p99 {p99:7.1f} us  throughput {rate:8.1f} MiB/s")
        ratio = statistics.median(res["cross node"]["mib_s"]) / statistics.median(res["same node"]["mib_s"])
        added = statistics.median(res["cross node"]["p50"]) - statistics.median(res["same node"]["p50"])
        print(f"cross-node throughput {ratio * 100:.0f} % of same-node (target >= 80 %); "
              f"added p50 {added:+.1f} us")
    finally:
        bench.stop()
        print(f"(logs: {base})")


if __name__ == "__main__":
    main()
