"""Pod start latency: orchestra (create → Running seen on a watch) against the raw Podman floor.

All in one run, on one `podman system service` (the one `orchestra up` starts in its state dir):
  * orchestra, N pods one at a time and N at once: POST a Pod to the API (the scheduler binds it,
    the node agent runs it), latency = POST sent → first watch event with status.phase Running;
  * the floor, podman-py on the same socket with the same image and command: pods.create +
    containers.create(pod=) + pod.start() + reload until running, N one at a time and N at once
    (one PodmanClient per thread, as a requests.Session is not thread-safe);
  * `podman kube play` of the same N pods (one multi-document Pod YAML): wall time until all run.
Between phases everything is removed, so each phase starts from the same empty host.
Targets (issue 4): orchestra p50 <= 1.3x the floor p50; N concurrent orchestra pods all Running
sooner than `podman kube play` of the same N pods.

Usage: .venv/bin/python bench/podstart.py [--pods 20] [--warmup 2] [--json out.json]
Needs root Podman and localhost/busybox:latest (orchestra builds it on start-up).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time  # wall-clock: a benchmark measures real time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import podman

IMAGE = "localhost/busybox:latest"
COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]  # stops at once on SIGTERM
BENCH_LABEL = "orchestra.bench"
CLUSTER_LABEL = "orchestra.io/cluster"
NS = "bench"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# ------------------------------------------------------------------------------- orchestra side


class Orchestra:
    """`orchestra up --memory --no-network` in a subprocess, plus an API client and a pod watch."""

    def __init__(self, state: Path) -> None:
        self.state = state
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = (state.parent / "orchestra.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestra", "up", "--memory", "--no-network", "--no-dashboard",
             "--state-dir", str(state), "--listen", f"127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.http = self._wait_ready()
        self.cluster_id = self.http.get("/api/v1/namespaces/kube-system").json()["metadata"]["uid"]
        self._wait_node()
        self.http.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).raise_for_status()
        self.created: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.bound: dict[str, float] = {}
        self._cond = threading.Condition()
        self._stop = False
        self._watch_thread = threading.Thread(target=self._watch, daemon=True)
        self._watch_thread.start()

    def _wait_ready(self) -> httpx.Client:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"orchestra up exited with {self.proc.returncode}; see {self.log.name}")
            token, ca = self.state / "token", self.state / "pki" / "ca.crt"
            if token.exists() and ca.exists():
                client = httpx.Client(base_url=f"https://127.0.0.1:{self.port}", timeout=30,
                                      verify=ssl.create_default_context(cafile=str(ca)),
                                      headers={"Authorization": f"Bearer {token.read_text().strip()}"})
                try:
                    if client.get("/readyz").status_code == 200:
                        return client
                except httpx.TransportError:  # not listening yet
                    pass
                client.close()
            time.sleep(0.05)
        raise SystemExit("orchestra did not become ready in 90 s")

    def _wait_node(self) -> None:
        deadline = time.monotonic() + 90
        while not self.http.get("/api/v1/nodes").json()["items"]:
            if time.monotonic() > deadline:
                raise SystemExit("no node registered in 90 s")
            time.sleep(0.1)

    def _watch(self) -> None:
        rv = self.http.get(f"/api/v1/namespaces/{NS}/pods").json()["metadata"]["resourceVersion"]
        while not self._stop:
            params = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true"}
            try:
                with self.http.stream(
                    "GET", f"/api/v1/namespaces/{NS}/pods", params=params, timeout=None
                ) as r:
                    for line in r.iter_lines():
                        if line:
                            rv = self._event(json.loads(line)["object"], time.perf_counter())
            except httpx.HTTPError:  # orchestra stopping (or the watch timed out): re-watch from rv
                if self._stop:
                    return

    def _event(self, obj: dict[str, Any], now: float) -> str:
        name = obj["metadata"].get("name")
        with self._cond:
            if name and obj.get("spec", {}).get("nodeName"):
                self.bound.setdefault(name, now)
            if name and (obj.get("status") or {}).get("phase") == "Running":
                self.running.setdefault(name, now)
                self._cond.notify_all()
        return str(obj["metadata"]["resourceVersion"])

    def create(self, name: str) -> float:
        pod = {"metadata": {"name": name, "labels": {BENCH_LABEL: "1"}},
               "spec": {"terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "c", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                                        "command": COMMAND}]}}
        t0 = self.created[name] = time.perf_counter()
        self.http.post(f"/api/v1/namespaces/{NS}/pods", json=pod).raise_for_status()
        return t0

    def wait_running(self, names: list[str], timeout: float = 120) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: all(n in self.running for n in names), timeout):
                missing = [n for n in names if n not in self.running]
                raise SystemExit(f"pods not Running after {timeout} s: {missing}")

    def delete_all(self, names: list[str]) -> None:
        for name in names:
            self.http.delete(f"/api/v1/namespaces/{NS}/pods/{name}")
        deadline = time.monotonic() + 120
        while self.http.get(f"/api/v1/namespaces/{NS}/pods").json()["items"]:
            if time.monotonic() > deadline:
                raise SystemExit("pods not deleted after 120 s")
            time.sleep(0.1)

    def close(self) -> None:
        self._stop = True
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def orchestra_one_by_one(o: Orchestra, names: list[str]) -> list[float]:
    out = []
    for name in names:
        t0 = o.create(name)
        o.wait_running([name])
        out.append(o.running[name] - t0)
    return out


def orchestra_at_once(o: Orchestra, names: list[str]) -> tuple[list[float], float]:
    start = time.perf_counter()
    with ThreadPoolExecutor(len(names)) as pool:
        t0s = dict(zip(names, pool.map(o.create, names), strict=True))
    o.wait_running(names)
    return [o.running[n] - t0s[n] for n in names], max(o.running[n] for n in names) - start


# ----------------------------------------------------------------------------------- the floor


class Floor:
    """The raw podman-py sequence on the same service socket."""

    def __init__(self, socket_path: str, run_id: str) -> None:
        self.url = f"unix://{socket_path}"
        self.run_id = run_id
        self._local = threading.local()
        self._clients: list[podman.PodmanClient] = []

    def client(self) -> podman.PodmanClient:
        c = getattr(self._local, "c", None)
        if c is None:
            c = self._local.c = podman.PodmanClient(base_url=self.url, timeout=120)
            self._clients.append(c)
        return c

    def start_one(self, name: str) -> float:
        c = self.client()
        labels = {BENCH_LABEL: self.run_id}
        t0 = time.perf_counter()
        pod = c.pods.create(name, labels=labels)
        ctr = c.containers.create(IMAGE, command=COMMAND, name=f"{name}-c", pod=pod.id, labels=labels)
        pod.start()
        ctr.reload()
        while ctr.status != "running":
            time.sleep(0.005)
            ctr.reload()
        return time.perf_counter() - t0

    def remove_all(self) -> None:
        c = self.client()
        pods = c.pods.list(filters={"label": f"{BENCH_LABEL}={self.run_id}"})

        def rm(p: Any) -> None:
            with contextlib.suppress(podman.errors.APIError):
                p.kill("SIGKILL")
            p.remove(force=True)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(rm, pods))

    def close(self) -> None:
        for c in self._clients:
            c.close()


def floor_one_by_one(f: Floor, names: list[str]) -> list[float]:
    return [f.start_one(n) for n in names]


def floor_at_once(f: Floor, names: list[str]) -> tuple[list[float], float]:
    start = time.perf_counter()
    with ThreadPoolExecutor(len(names)) as pool:
        lat = list(pool.map(f.start_one, names))
    return lat, time.perf_counter() - start


# ---------------------------------------------------------------------------------- kube play


def kube_play(f: Floor, names: list[str], conf: Path, workdir: Path) -> float:
    docs = [{"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": n, "labels": {BENCH_LABEL: f.run_id}},
             "spec": {"containers": [{"name": "c", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                                      "command": COMMAND}]}} for n in names]
    path = workdir / "pods.yaml"
    path.write_text("\n---\n".join(json.dumps(d) for d in docs) + "\n")  # JSON is YAML
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    c = f.client()
    t0 = time.perf_counter()
    subprocess.run(["podman", "kube", "play", str(path)], env=env, check=True, capture_output=True)
    while True:  # kube play returns once it started them; make sure, as for the others
        ctrs = c.containers.list(filters={"label": f"{BENCH_LABEL}={f.run_id}"})
        # (list entries carry State as a plain string, unlike inspect)
        if sum(x.attrs.get("State") == "running" and not x.attrs.get("IsInfra") for x in ctrs) >= len(names):
            return time.perf_counter() - t0
        time.sleep(0.01)


# ------------------------------------------------------------------------------------- the run


def summary(label: str, lat: list[float]) -> dict[str, float]:
    row = {"p50": statistics.median(lat) * 1000, "p90": pct(lat, 0.9) * 1000,
           "min": min(lat) * 1000, "max": max(lat) * 1000}
    print(f"  {label:<34} p50 {row['p50']:6.0f} ms   p90 {row['p90']:6.0f} ms   "
          f"min {row['min']:5.0f}   max {row['max']:5.0f}")
    return row


@contextlib.contextmanager
def phase(title: str, cleanup: Callable[[], None]) -> Iterator[None]:
    print(f"- {title}", flush=True)
    try:
        yield
    finally:
        cleanup()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pods", type=int, default=20)
    ap.add_argument(
        "--warmup", type=int, default=2, help="pods started (and discarded) before each measurement"
    )
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    n, run_id = args.pods, f"b{uuid.uuid4().hex[:6]}"
    workdir = Path(tempfile.mkdtemp(prefix="podstart-"))
    state = workdir / "state"
    o = Orchestra(state)
    floor = Floor(str(state / "podman" / "podman.sock"), run_id)
    conf = state / "podman" / "containers.conf"
    results: dict[str, Any] = {"pods": n}
    try:
        names = lambda prefix: [f"{prefix}-{i:02d}" for i in range(n)]  # noqa: E731
        def warm_cleanup() -> None:
            o.delete_all(names("wo")[: args.warmup])
            floor.remove_all()

        with phase("warm-up", warm_cleanup):
            orchestra_one_by_one(o, names("wo")[: args.warmup])
            floor_one_by_one(floor, [f"{run_id}-wf-{i}" for i in range(args.warmup)])
        print(f"pod start latency, {n} pods, busybox, pod + 1 container, default podman network")
        with phase("one at a time", floor.remove_all):
            results["floor_seq"] = summary(
                "podman-py floor, one at a time",
                floor_one_by_one(floor, [f"{run_id}-fs-{i}" for i in range(n)]),
            )
        with phase("one at a time", lambda: o.delete_all(names("os"))):
            results["orch_seq"] = summary("orchestra, one at a time", orchestra_one_by_one(o, names("os")))
            bound = [o.bound[x] - o.created[x] for x in names("os")]
            results["orch_seq_bound_p50"] = statistics.median(bound) * 1000
            print(
                f"    (of which create -> bound by the scheduler: p50 {results['orch_seq_bound_p50']:.0f} ms)"
            )
        with phase("at once", floor.remove_all):
            lat, total = floor_at_once(floor, [f"{run_id}-fc-{i}" for i in range(n)])
            results["floor_conc"] = {**summary(f"podman-py floor, {n} at once", lat), "all_running_s": total}
        with phase("at once", lambda: o.delete_all(names("oc"))):
            lat, total = orchestra_at_once(o, names("oc"))
            results["orch_conc"] = {**summary(f"orchestra, {n} at once", lat), "all_running_s": total}
        with phase("kube play", floor.remove_all):
            results["kube_play_s"] = kube_play(
                floor, [f"{run_id}-kp-{i:02d}" for i in range(n)], conf, workdir
            )
        fs, os_, fc, oc = (results[k] for k in ("floor_seq", "orch_seq", "floor_conc", "orch_conc"))
        print(f"  all {n} Running: orchestra {oc['all_running_s']:.2f} s, podman-py floor "
              f"{fc['all_running_s']:.2f} s, podman kube play {results['kube_play_s']:.2f} s")
        ratio = os_["p50"] / fs["p50"]
        results["ratio_seq_p50"] = ratio
        results["ratio_conc_p50"] = oc["p50"] / fc["p50"]
        print(
            f"  orchestra / floor p50: one at a time {ratio:.2f}x, at once {results['ratio_conc_p50']:.2f}x"
        )
        ok1, ok2 = ratio <= 1.3, oc["all_running_s"] < results["kube_play_s"]
        print(f"targets: p50 <= 1.3x floor: {'met' if ok1 else 'MISSED'}; "
              f"{n} at once faster than kube play: {'met' if ok2 else 'MISSED'}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        floor.remove_all()
        floor.close()
        o.close()
        # orchestra leaves its pods running when it stops (a restart adopts them): remove leftovers
        env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        left = subprocess.run(
            ["podman", "pod", "ps", "-q", "--filter", f"label={CLUSTER_LABEL}={o.cluster_id}"],
            env=env,
            capture_output=True,
            text=True,
        ).stdout.split()
        if left:
            subprocess.run(["podman", "pod", "rm", "-f", "-t", "0", *left], env=env, capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
