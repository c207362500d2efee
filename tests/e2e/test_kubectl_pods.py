"""Issue 4 acceptance: kubectl 1.32 against a real orchestra cluster whose pods are real Podman pods.

One cluster per module runs in a background thread (`run_cluster`, podman=True, network=False,
memory store; its own `podman system service` on <state>/podman/podman.sock). The restart test
starts its own durable cluster so it can stop it and start a new one on the same state directory.
Every Podman object the agent makes carries `orchestra.io/cluster=<kube-system uid>`; the fixture
teardown stops the cluster and removes whatever is left with that label, even after a failure.

Timings asserted here are kubelet semantics (CrashLoopBackOff 10 s then 20 s, the grace period),
with a little slack for a loaded 2-vCPU machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import select
import socket
import ssl
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from tests.conftest import KUBECTL, ClusterThread
from tests.e2e.upserver import remove_cluster_containers

pytestmark = [pytest.mark.podman, pytest.mark.kubectl, pytest.mark.slow]

IMAGE = "localhost/busybox:latest"
LABEL_CLUSTER = "orchestra.io/cluster"
HTTPD = "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"
POLITE = "trap 'exit 0' TERM; sleep 3600 & wait"

Obj = dict[str, Any]


# ------------------------------------------------------------------------------------ the cluster


@attrs.define
class PodmanCluster:
    runner: ClusterThread
    state: Path
    home: Path
    url: str
    token: str
    ca_cert: Path
    kubeconfig: Path
    cluster_id: str = ""
    http: httpx.Client = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        tls = ssl.create_default_context(cafile=str(self.ca_cert))
        self.http = httpx.Client(base_url=self.url, verify=tls, timeout=10,
                                 headers={"Authorization": f"Bearer {self.token}"})

    # --- kubectl and podman ---------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.home)}

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True,
                              env=self.env(), timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def apply(self, doc: Obj) -> None:
        self.kubectl("apply", "-f", "-", input=json.dumps(doc))

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "CONTAINERS_CONF": str(self.state / "podman" / "containers.conf")}
        proc = subprocess.run(["podman", *args], capture_output=True, text=True, env=env, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def pod_ps(self) -> list[Obj]:
        """`podman pod ps` of this cluster's pods (JSON)."""
        out = self.podman(
            "pod", "ps", "--filter", f"label={LABEL_CLUSTER}={self.cluster_id}", "--format", "json"
        )
        return list(json.loads(out.stdout or "[]"))

    # --- the API, read directly (cheap enough to poll every 0.1 s) ------------------------------

    def pod(self, name: str, ns: str = "default") -> Obj | None:
        r = self.http.get(f"/api/v1/namespaces/{ns}/pods/{name}")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return dict(r.json())

    def pods(self, selector: str, ns: str = "default") -> list[Obj]:
        r = self.http.get(f"/api/v1/namespaces/{ns}/pods", params={"labelSelector": selector})
        r.raise_for_status()
        return list(r.json()["items"])

    def wait_pod(self, name: str, pred: Callable[[Obj | None], bool], limit: float = 30) -> Obj | None:
        deadline = time.monotonic() + limit
        pod = self.pod(name)
        while not pred(pod):
            assert time.monotonic() < deadline, (
                f"pod {name} did not get there in {limit} s; last:\n{_brief(pod)}"
            )
            time.sleep(0.1)
            pod = self.pod(name)
        return pod

    def events(self, name: str) -> list[Obj]:
        r = self.http.get("/api/v1/namespaces/default/events",
                          params={"fieldSelector": f"involvedObject.name={name}"})
        r.raise_for_status()
        return list(r.json()["items"])

    def stop(self) -> None:
        """Stop the in-process cluster (run_cluster closes its Podman runtime; the pods keep running)."""
        self.runner.stop()

    def remove_leftovers(self) -> None:
        """Everything this cluster's agent labelled; a no-op when the tests cleaned up."""
        remove_cluster_containers(self.state, self.cluster_id)


def start_cluster(
    state: Path, home: Path, store: str, *, stop_pods: bool = False, timings: str = "default"
) -> PodmanCluster:
    from orchestra.app import ClusterConfig

    config = ClusterConfig(
        state_dir=state,
        listen_port=0,
        store=store,
        podman=True,
        network=False,
        fsync="never",
        stop_pods_on_exit=stop_pods,
        timings=timings,
    )
    runner = ClusterThread(config)
    try:
        c: Any = runner.start()
        assert c is not None, "the cluster did not start within 60 s"
        cluster = PodmanCluster(runner, state, home, c.url, c.token, c.ca_cert, c.kubeconfig)
        r = cluster.http.get("/api/v1/namespaces/kube-system")
        r.raise_for_status()
    except BaseException:
        runner.stop()  # never leave the podman service behind (the thread is a daemon)
        raise
    cluster.cluster_id = r.json()["metadata"]["uid"]  # what app.py labels the runtime objects with
    return cluster


@contextlib.contextmanager
def cluster_on(state: Path, home: Path, store: str, *, timings: str = "default") -> Iterator[PodmanCluster]:
    cluster = start_cluster(state, home, store, timings=timings)
    try:
        yield cluster
    finally:
        cluster.stop()
        cluster.remove_leftovers()
        cluster.http.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodmanCluster]:
    if os.environ.get("ORCHESTRA_NO_PODMAN") == "1":
        pytest.skip("ORCHESTRA_NO_PODMAN=1")
    if not os.access(KUBECTL, os.X_OK):
        pytest.fail(f"kubectl 1.32 is required for these tests ({KUBECTL})")
    with cluster_on(tmp_path_factory.mktemp("state"), tmp_path_factory.mktemp("home"), "memory") as c:
        yield c


# ------------------------------------------------------------------------------------- manifests


def httpd_container(**extra: Any) -> Obj:
    return {"name": "web", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", HTTPD], "ports": [{"containerPort": 8080}], **extra}


def deployment(name: str, replicas: int = 2) -> Obj:
    probe = {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"terminationGracePeriodSeconds": 2,
                                       "containers": [httpd_container(readinessProbe=probe)]}}},
    }


def pod(name: str, containers: list[Obj], **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": containers, **spec}}


def shell(name: str, script: str) -> Obj:
    return {"name": name, "image": IMAGE, "imagePullPolicy": "IfNotPresent", "command": ["sh", "-c", script]}


# ----------------------------------------------------------------------------------- pod helpers


def phase(p: Obj | None) -> str:
    return str(((p or {}).get("status") or {}).get("phase") or "")


def cstatus(p: Obj | None, name: str | None = None) -> Obj:
    for cs in ((p or {}).get("status") or {}).get("containerStatuses") or []:
        if name is None or cs.get("name") == name:
            return dict(cs)
    return {}


def ready(p: Obj | None) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in ((p or {}).get("status") or {}).get("conditions") or [])


def running(p: Obj | None) -> bool:
    return phase(p) == "Running" and "running" in (cstatus(p).get("state") or {})


def restarts(p: Obj | None) -> int:
    return int(cstatus(p).get("restartCount") or 0)


def container_id(p: Obj | None) -> str:
    return str(cstatus(p).get("containerID") or "").removeprefix("podman://")


def _brief(p: Obj | None) -> str:
    return json.dumps((p or {}).get("status"), indent=1)[:3000]


def delete_quietly(cluster: PodmanCluster, *names: str) -> None:
    cluster.kubectl(
        "delete", "pod", *names, "--ignore-not-found", "--grace-period=0", "--wait=false", check=False
    )


@pytest.fixture(scope="module")
def web(cluster: PodmanCluster) -> list[str]:
    """The busybox httpd Deployment, rolled out: the names of its two Ready pods."""
    cluster.apply(deployment("web"))
    cluster.kubectl("rollout", "status", "deployment/web", "--timeout=90s", timeout=100)
    names = sorted(p["metadata"]["name"] for p in cluster.pods("app=web"))
    assert len(names) == 2
    return names


# ----------------------------------------------------------------------------------------- tests


def test_deployment_runs_ready_in_podman_pods(cluster: PodmanCluster, web: list[str]) -> None:
    for name in web:
        p = cluster.pod(name)
        assert running(p) and ready(p), _brief(p)
        assert p is not None and p["spec"]["nodeName"]
        with httpx.Client(timeout=5) as http:  # the pod IP is on podman's bridge, reachable from the host
            assert http.get(f"http://{p['status']['podIP']}:8080/").text == "ok\n"
    table = cluster.kubectl("get", "pods", "-l", "app=web").stdout
    assert table.count("1/1") == 2 and table.count("Running") == 2, table
    by_name = {p["Labels"]["orchestra.io/pod-name"]: p for p in cluster.pod_ps()}
    for name in web:
        [sandbox] = [s for n, s in by_name.items() if f"_{name}_" in n]
        assert sandbox["Status"] == "Running"
        states = {c["Status"] for c in sandbox["Containers"]}
        assert states == {"running"} and len(sandbox["Containers"]) == 2  # infra + web


def test_kubectl_logs(cluster: PodmanCluster) -> None:
    cluster.apply(pod("printer", [shell("main", "for i in 1 2 3; do echo line $i; done; echo err >&2")],
                      restartPolicy="Never"))
    try:
        cluster.wait_pod("printer", lambda p: phase(p) == "Succeeded")
        out = cluster.kubectl("logs", "printer")
        assert out.stdout == "line 1\nline 2\nline 3\nerr\n"
        assert cluster.kubectl("logs", "printer", "--tail=1").stdout == "err\n"
    finally:
        delete_quietly(cluster, "printer")


def test_kubectl_logs_follow_ends_when_the_container_exits(cluster: PodmanCluster) -> None:
    script = "for i in 1 2 3 4; do echo tick $i; sleep 1; done"
    cluster.apply(pod("ticker", [shell("main", script)], restartPolicy="Never"))
    try:
        cluster.wait_pod("ticker", running)
        t0 = time.monotonic()
        out = cluster.kubectl("logs", "-f", "ticker", timeout=30)
        assert out.stdout == "".join(f"tick {i}\n" for i in range(1, 5))
        assert time.monotonic() - t0 < 10  # returned when the container exited, not at a timeout
    finally:
        delete_quietly(cluster, "ticker")


def test_kubectl_exec_it_interactive_shell(cluster: PodmanCluster, web: list[str]) -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 132, 0, 0))
    proc = subprocess.Popen([KUBECTL, "exec", "-it", web[0], "--", "sh"], stdin=slave, stdout=slave,
                            stderr=slave, env=cluster.env(), start_new_session=True)
    os.close(slave)
    output = bytearray()

    def read_until(marker: bytes, limit: float = 20) -> None:
        deadline = time.monotonic() + limit
        while marker not in output:
            left = deadline - time.monotonic()
            assert left > 0, f"no {marker!r} in {bytes(output)!r}"
            if select.select([master], [], [], left)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: kubectl exited and closed the pty
                    chunk = b""
                if not chunk:
                    assert marker in output, f"no {marker!r} in {bytes(output)!r}"
                    return
                output.extend(chunk)

    try:
        read_until(b"# ")
        os.write(master, b"echo answer-$((6*7)); tty; stty size\r")
        read_until(b"answer-42\r\n")
        read_until(b"40 132")  # the pty size kubectl sent
        os.write(master, b"exit 3\r")
        assert proc.wait(20) == 3  # kubectl passes the shell's exit code on
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert b"/dev/pts/" in output  # a real terminal in the container


def test_kubectl_exec_exit_code(cluster: PodmanCluster, web: list[str]) -> None:
    failed = cluster.kubectl("exec", web[0], "--", "false", check=False)
    assert failed.returncode == 1 and "command terminated with exit code 1" in failed.stderr, failed.stderr
    out = cluster.kubectl("exec", web[0], "--", "sh", "-c", "echo out; echo err >&2; exit 7", check=False)
    assert (out.returncode, out.stdout, out.stderr.splitlines()[0]) == (7, "out\n", "err")
    assert cluster.kubectl("exec", web[0], "--", "cat", "/www/index.html").stdout == "ok\n"


def test_kubectl_port_forward(cluster: PodmanCluster, web: list[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        local = s.getsockname()[1]
    with subprocess.Popen([KUBECTL, "port-forward", f"pod/{web[0]}", f"{local}:8080"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=cluster.env()) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            line = proc.stdout.readline()  # blocks until kubectl listens (or exits: empty line)
            assert f"127.0.0.1:{local} -> 8080" in line, line + proc.stderr.read()
            with httpx.Client(timeout=10) as http:
                for _ in range(3):  # one forwarded stream per connection
                    assert (
                        http.get(f"http://127.0.0.1:{local}/", headers={"Connection": "close"}).text == "ok\n"
                    )
        finally:
            proc.terminate()


def test_crashing_container_backs_off_10s_then_20s(cluster: PodmanCluster) -> None:
    cluster.apply(pod("crash", [shell("main", "echo crashing; exit 1")]))
    try:
        seen: dict[int, float] = {}
        reasons: set[str] = set()
        deadline = time.monotonic() + 45
        while 3 not in seen:
            assert time.monotonic() < deadline, f"restarts seen at {seen}"
            p = cluster.pod("crash")
            seen.setdefault(restarts(p), time.monotonic())
            reasons.add(str((cstatus(p).get("state") or {}).get("waiting", {}).get("reason", "")))
            time.sleep(0.1)
        first, second = seen[2] - seen[1], seen[3] - seen[2]
        print(f"CrashLoopBackOff gaps: {first:.1f} s, {second:.1f} s")
        assert 9 <= first <= 13.5 and 19 <= second <= 24, (first, second)
        assert "CrashLoopBackOff" in reasons
        assert cstatus(p)["lastState"]["terminated"]["exitCode"] == 1
        assert any(e["reason"] == "BackOff" for e in cluster.events("crash"))
    finally:
        delete_quietly(cluster, "crash")


def test_failing_liveness_probe_restarts_the_container(cluster: PodmanCluster) -> None:
    probe = {"httpGet": {"path": "/missing", "port": 8080}, "periodSeconds": 1, "failureThreshold": 2}
    cluster.apply(pod("live", [httpd_container(livenessProbe=probe)], terminationGracePeriodSeconds=2))
    try:
        first = cluster.wait_pod("live", running)
        p = cluster.wait_pod("live", lambda p: restarts(p) >= 1, limit=20)
        assert container_id(p) != container_id(first)
        reasons = {e["reason"]: e["message"] for e in cluster.events("live")}
        assert "Liveness probe failed" in reasons.get("Unhealthy", ""), reasons
        assert "failed liveness probe, will be restarted" in reasons.get("Killing", ""), reasons
        p = cluster.wait_pod("live", running, limit=15)  # and it runs again
        assert restarts(p) >= 1
    finally:
        delete_quietly(cluster, "live")


def test_failing_readiness_probe_keeps_the_pod_not_ready(cluster: PodmanCluster) -> None:
    probe = {"httpGet": {"path": "/missing", "port": 8080}, "periodSeconds": 1}
    cluster.apply(pod("unready", [httpd_container(readinessProbe=probe)], terminationGracePeriodSeconds=1))
    try:
        cluster.wait_pod("unready", running)
        for _ in range(20):  # 4 s of probing: never ready, never restarted
            p = cluster.pod("unready")
            assert running(p) and not ready(p) and restarts(p) == 0, _brief(p)
            time.sleep(0.2)
        row = cluster.kubectl("get", "pod", "unready", "--no-headers").stdout.split()
        assert row[1:3] == ["0/1", "Running"], row
        assert any(e["reason"] == "Unhealthy" and "Readiness probe failed" in e["message"]
                   for e in cluster.events("unready"))
    finally:
        delete_quietly(cluster, "unready")


def _delete_timed(cluster: PodmanCluster, name: str) -> float:
    p = cluster.pod(name)
    assert p is not None
    uid = p["metadata"]["uid"]
    t0 = time.monotonic()
    cluster.kubectl("delete", "pod", name, "--timeout=30s")  # waits until the pod is gone
    took = time.monotonic() - t0
    left = cluster.podman("ps", "-aq", "--filter", f"label=orchestra.io/pod-uid={uid}").stdout.split()
    assert left == [], f"containers of {name} left behind: {left}"
    return took


def test_delete_pod_stops_containers_within_the_grace_period(cluster: PodmanCluster) -> None:
    cluster.apply(pod("polite", [shell("main", POLITE)], terminationGracePeriodSeconds=5))
    # PID 1 without a SIGTERM handler ignores SIGTERM: only the SIGKILL after the grace period stops it
    cluster.apply(pod("stubborn", [{"name": "main", "image": IMAGE, "command": ["sleep", "3600"]}],
                      terminationGracePeriodSeconds=5))
    try:
        cluster.wait_pod("polite", running)
        cluster.wait_pod("stubborn", running)
        polite = _delete_timed(cluster, "polite")
        stubborn = _delete_timed(cluster, "stubborn")
        print(f"delete: polite {polite:.2f} s, stubborn {stubborn:.2f} s (grace 5 s)")
        assert polite < 2.5
        assert 4.5 <= stubborn <= 5 + 2.0
    finally:
        delete_quietly(cluster, "polite", "stubborn")


def test_podman_kill_is_healed(cluster: PodmanCluster, web: list[str]) -> None:
    name = web[1]
    before = cluster.wait_pod(name, lambda p: ready(p))
    cluster.podman("kill", container_id(before))
    p = cluster.wait_pod(
        name, lambda p: restarts(p) == restarts(before) + 1 and running(p) and ready(p), limit=20
    )
    assert container_id(p) != container_id(before)
    assert cstatus(p)["lastState"]["terminated"]["exitCode"] == 137


def test_restarted_cluster_adopts_running_pods(tmp_path_factory: pytest.TempPathFactory) -> None:
    if os.environ.get("ORCHESTRA_NO_PODMAN") == "1":
        pytest.skip("ORCHESTRA_NO_PODMAN=1")
    state, home = tmp_path_factory.mktemp("durable"), tmp_path_factory.mktemp("home2")
    first = start_cluster(state, home, "durable")
    second: PodmanCluster | None = None
    try:
        first.apply(deployment("keep"))
        first.kubectl("rollout", "status", "deployment/keep", "--timeout=90s", timeout=100)
        before = {p["metadata"]["name"]: container_id(p) for p in first.pods("app=keep")}
        sandboxes = {s["Id"] for s in first.pod_ps()}
        assert len(before) == 2 and len(sandboxes) == 2
        first.stop()  # the API, controllers, agent and podman service go; conmon keeps the pods
        assert {s["Id"] for s in first.pod_ps() if s["Status"] == "Running"} == sandboxes

        second = start_cluster(state, home, "durable")
        assert second.cluster_id == first.cluster_id  # the same cluster, so its pods are ours
        second.kubectl("rollout", "status", "deployment/keep", "--timeout=60s", timeout=70)
        time.sleep(3)  # give a wrong agent time to duplicate or replace something
        after = {p["metadata"]["name"]: p for p in second.pods("app=keep")}
        assert {n: container_id(p) for n, p in after.items()} == before  # same pods, same containers
        assert all(running(p) and ready(p) and restarts(p) == 0 for p in after.values())
        assert {s["Id"] for s in second.pod_ps()} == sandboxes  # none duplicated, none re-created
        assert all(s["Status"] == "Running" for s in second.pod_ps())
    finally:
        first.stop()
        if second is not None:
            second.stop()
            second.http.close()
        first.remove_leftovers()
        first.http.close()


def test_stop_pods_on_exit_removes_the_clusters_pods(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`orchestra up --stop-pods`: a clean shutdown stops and removes this cluster's pods."""
    if os.environ.get("ORCHESTRA_NO_PODMAN") == "1":
        pytest.skip("ORCHESTRA_NO_PODMAN=1")
    state, home = tmp_path_factory.mktemp("stopping"), tmp_path_factory.mktemp("home3")
    c = start_cluster(state, home, "memory", stop_pods=True)
    try:
        c.apply(deployment("bye", replicas=2))
        c.kubectl("rollout", "status", "deployment/bye", "--timeout=90s", timeout=100)
        assert len(c.pod_ps()) == 2
        c.stop()  # both stopped at once (each may wait out its grace period)
        assert c.pod_ps() == []
    finally:
        c.stop()
        c.remove_leftovers()
        c.http.close()
