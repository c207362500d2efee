"""Multi-node benchmark: how fast a node joins, and pod-to-pod traffic across nodes against the same pair
of pods on one node, in the same run.

Starts `python -m orchestra up --memory --nodes 3 --stop-pods` (network on, real Podman: the host's node
and worker-1, worker-2, each in its own network namespace) as a subprocess (bench/proxy.py's harness).
- join: --joins times, a new node in a network namespace of its own on the same link
  (`nsenter --net=... orchestra join https://10.243.0.1:PORT --token ...`, a fresh state dir each), timed
  from the process's start to its Node's Ready condition as the API shows it (polled every 20 ms over one
  keep-alive HTTPS connection: kubectl would start a process each time, on the CPUs the join uses); the
  join includes Python's start, the CSR, its own Podman service and network;
- pod-to-pod: a server pod on worker-1, one client pod beside it on worker-1 and one on worker-2. The
  traffic runs in the pods' own network namespaces (nsenter into the containers' net namespace, with
  this host's Python: busybox has no load generator), so it takes the pods' real path: veth, the node's
  bridge, and across nodes the host-gw route over the link. Latency: --requests sequential 64-byte
  request/response pairs on one TCP connection (p50/p99); throughput: --mib MiB sent on one connection.
  Same-node and cross-node alternate in --rounds rounds (which goes first alternates too) so drift hits
  both alike. The latency runs wherever the scheduler puts it; the throughput stream is measured twice
  per round, sender and receiver pinned to two CPUs (the first and the last) and then both to the first,
  the same for both pairs: left to the scheduler, which of the two a run gets decides the ratio (on two
  CPUs the sender's CPU does the kernel's work of every hop up to the receiving socket, on one kernel,
  and only the receiver's copy runs beside it; on one CPU all of it shares that CPU). Printed: medians,
  each round's ratio, and the sender's CPU time per GiB (its own process; where the kernel charges
  softirq time to the task it interrupts, as tick-based accounting without IRQ time accounting does,
  that includes the hops: the path's cost, less swayed than MiB/s by other load).
Targets (the multi-node issue): join to Ready <= 2 s; cross-node throughput >= 80 % of same-node.
Needs root and no other network-enabled orchestra on the machine (10.96.0.10:53, the ClusterIPs).
Usage: .venv/bin/python bench/multinode.py [--joins 3] [--requests 2000] [--mib 256] [--rounds 5]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time  # wall-clock: a benchmark measures real time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from proxy import IMAGE, Orchestra  # bench/ is on sys.path when run as a script

PORT = 5201
SERVER = f"""
import os, socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", {PORT}))
s.listen(16)
def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    mode = c.recv(1)
    if mode == b"e":  # echo 64-byte messages
        while (m := c.recv(64)):
            c.sendall(m)
    else:  # sink, on the CPU the client names (-1: any)
        cpu = int.from_bytes(c.recv(4, socket.MSG_WAITALL), "big", signed=True)
        if cpu >= 0:
            os.sched_setaffinity(0, {{cpu}})  # this thread
        while c.recv(1 << 20):
            pass
        c.sendall(b"k")
    c.close()
print("ready", flush=True)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
"""
CLIENT = """
import json, os, socket, sys, time
host, port, requests, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
placements = json.loads(sys.argv[5])  # [[name, client CPU, server CPU], ...]
c = socket.create_connection((host, port)); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
c.sendall(b"e"); msg = b"x" * 64; lat = []
for _ in range(requests):
    t0 = time.perf_counter(); c.sendall(msg); got = 0
    while got < 64:
        got += len(c.recv(64 - got))
    lat.append((time.perf_counter() - t0) * 1e6)
c.close()
out = {"lat_us": lat}
for name, mine, theirs in placements:
    if mine >= 0:
        os.sched_setaffinity(0, {mine})
    c = socket.create_connection((host, port)); c.sendall(b"s" + theirs.to_bytes(4, "big", signed=True))
    block = b"\\0" * (1 << 20)
    cpu0 = time.process_time(); t0 = time.perf_counter()
    for _ in range(mib):
        c.sendall(block)
    c.shutdown(socket.SHUT_WR); c.recv(1); secs = time.perf_counter() - t0; cpu = time.process_time() - cpu0
    c.close()
    out[name] = {"mib_s": mib / secs, "cpu_s_gib": cpu / mib * 1024}
print(json.dumps(out))
"""


def placements() -> list[tuple[str, int, int]]:
    """Where the throughput stream's sender and receiver run: on two CPUs (the first and the last), and
    both on the first; with one CPU, wherever the scheduler puts them."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return [("any CPU", -1, -1)]
    return [("two CPUs", cpus[0], cpus[-1]), ("one CPU", cpus[0], cpus[0])]


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

    def api(self) -> tuple[http.client.HTTPSConnection, str]:
        """A keep-alive HTTPS connection to the API and its bearer token (from the kubeconfig)."""
        cfg = json.loads((self.base / "s" / "kubeconfig").read_text())
        url = urlsplit(cfg["clusters"][0]["cluster"]["server"])
        ctx = ssl.create_default_context(cafile=str(self.base / "s" / "pki" / "ca.crt"))
        return (http.client.HTTPSConnection(url.hostname or "", url.port, context=ctx, timeout=10),
                cfg["users"][0]["user"]["token"])

    @staticmethod
    def node_ready_via(conn: http.client.HTTPSConnection, token: str, name: str) -> bool:
        """The Node's Ready condition, read over `conn` (polling with kubectl would spawn a process
        every 20 ms, and take the CPU from the join it times)."""
        conn.request("GET", f"/api/v1/nodes/{name}", headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            return False
        conditions = json.loads(body)["status"].get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

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
        conn, bearer = self.api()
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
                        while not self.node_ready_via(conn, bearer, name):
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
        where = placements()
        keys = ["p50", "p99"] + [f"{k} {p}" for p, _c, _s in where for k in ("mib_s", "cpu_s_gib")]
        results: dict[str, dict[str, list[float]]] = {label: {k: [] for k in keys}
                                                      for label in ("same node", "cross node")}
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            pairs = [("same node", "cli-same"), ("cross node", "cli-cross")]
            for i in range(rounds):
                for label, pod in pairs if i % 2 == 0 else pairs[::-1]:
                    out = subprocess.run(["nsenter", "-t", str(self.pid_of(pods[pod])), "-n", sys.executable,
                                          "-c", CLIENT, srv_ip, str(PORT), str(requests), str(mib),
                                          json.dumps(where)],
                                         capture_output=True, text=True, check=True, timeout=600)
                    got = json.loads(out.stdout)
                    lat = sorted(got["lat_us"])
                    results[label]["p50"].append(lat[len(lat) // 2])
                    results[label]["p99"].append(lat[int(len(lat) * 0.99)])
                    for place, _c, _s in where:
                        for k in ("mib_s", "cpu_s_gib"):
                            results[label][f"{k} {place}"].append(got[place][k])
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
    parser.add_argument("--rounds", type=int, default=5)
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
        same, cross = res["same node"], res["cross node"]
        for label, r in res.items():
            p50, p99 = statistics.median(r["p50"]), statistics.median(r["p99"])
            print(f"{label:>10}: p50 {p50:7.1f} us  p99 {p99:7.1f} us")
        for place, _c, _s in placements():
            rate, cpu = f"mib_s {place}", f"cpu_s_gib {place}"
            for label, r in res.items():
                mib_s, cost = statistics.median(r[rate]), statistics.median(r[cpu])
                print(f"{label:>10}, sender and receiver on {place}: throughput {mib_s:8.1f} MiB/s  "
                      f"sender CPU {cost:.3f} s/GiB")
            ratio = statistics.median(cross[rate]) / statistics.median(same[rate])
            rounds = [c / s * 100 for c, s in zip(cross[rate], same[rate], strict=True)]
            cost = statistics.median(cross[cpu]) / statistics.median(same[cpu])
            print(f"cross-node throughput on {place}: {ratio * 100:.0f} % of same-node (target >= 80 %; "
                  f"rounds {', '.join(f'{r:.0f}' for r in rounds)}); sender CPU per GiB x{cost:.2f}")
        added = statistics.median(cross["p50"]) - statistics.median(same["p50"])
        print(f"added p50 across nodes {added:+.1f} us")
    finally:
        bench.stop()
        print(f"(logs: {base})")


if __name__ == "__main__":
    main()
