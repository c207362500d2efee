"""Simulated nodes that behave like kwok's (node/simulated.py on the simulated runtime): pod CIDRs
from the node IPAM controller,
probes that pass unless scripted, completing init containers and Job pods, and a restart of the
whole thing (runtime and nodes, as in `orchestra up`) that adopts every pod unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from orchestra.api.request.core import ApiCore
from orchestra.client.local import LocalClient
from orchestra.node.simulated import PodCIDRTimeout, SimulatedNodes
from orchestra.reconcilers.nodeipam import NodeIpamController
from orchestra.runtime.simulated import SimClock, SimulatedRuntime
from orchestra.store import Store

from .harness import condition, state

Obj = dict[str, Any]
IMAGE = "localhost/busybox:latest"


@attrs.define
class Cluster:
    """The API core, and the simulated runtime and nodes, which can stop and start again (`up` restarts)."""

    core: ApiCore
    client: LocalClient
    nursery: trio.Nursery
    node_dir: Path
    state_dir: Path | None
    count: int = 3
    runtime: SimulatedRuntime | None = None
    nodes: SimulatedNodes | None = None
    scope: trio.CancelScope | None = None
    done: trio.Event | None = None

    async def start(self) -> None:
        runtime = SimulatedRuntime(clock=SimClock.wall(), state_dir=self.state_dir)
        nodes = SimulatedNodes(self.client, runtime, self.count, state_dir=self.node_dir, pod_cidr_timeout=30)
        self.runtime, self.nodes, self.scope, self.done = runtime, nodes, trio.CancelScope(), trio.Event()
        await self.nursery.start(self._run)

    async def _run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        assert self.scope is not None and self.done is not None and self.runtime and self.nodes
        try:
            with self.scope:
                async with trio.open_nursery() as nursery:
                    await nursery.start(self.runtime.run)
                    await nursery.start(self.nodes.run)
                    task_status.started()
        finally:
            self.done.set()

    async def stop(self) -> None:
        assert self.scope is not None and self.done is not None
        self.scope.cancel()
        await self.done.wait()

    async def pod(self, name: str, containers: list[Obj], *, node: str = "sim-node-1", **extra: Any) -> Obj:
        annotations = extra.pop("annotations", {})
        metadata = {"name": name, "namespace": "default", "annotations": annotations,
                    **extra.pop("metadata", {})}
        return await self.client.create(self.client.kind("Pod"), "default", {
            "metadata": metadata, "spec": {"nodeName": node, "containers": containers, **extra}})

    async def get(self, name: str) -> Obj:
        return await self.client.get(self.client.kind("Pod"), "default", name)

    async def wait(self, name: str, check: Any, limit: float = 300) -> Obj:
        with trio.fail_after(limit):
            while not check(pod := await self.get(name)):  # noqa: ASYNC110 (polling the API, as clients do)
                await trio.sleep(0.25)
        return pod


@asynccontextmanager
async def open_cluster(tmp_path: Path, state_dir: Path | None = None,
                       count: int = 3) -> AsyncIterator[Cluster]:
    core = ApiCore(Store.open_memory())
    client = LocalClient(core, field_manager="kubelet")
    for ns in ("default", "kube-node-lease", "kube-system"):
        await client.create(client.kind("Namespace"), None, {"metadata": {"name": ns}})
    async with trio.open_nursery() as nursery:
        await nursery.start(NodeIpamController(client).run)
        cluster = Cluster(core, client, nursery, tmp_path / "sim-nodes", state_dir, count)
        await cluster.start()
        try:
            yield cluster
        finally:
            nursery.cancel_scope.cancel()


def ctr(name: str = "c", *command: str, **extra: Any) -> Obj:
    return {"name": name, "image": IMAGE, **({"command": list(command)} if command else {}), **extra}


def ready(pod: Obj) -> bool:
    return condition(pod, "Ready") == "True"


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_nodes_get_pod_cidrs_and_their_pods_ips_from_them(tmp_path: Path,
                                                                clock: trio.abc.Clock) -> None:
    async with open_cluster(tmp_path) as cluster:
        listed, _ = await cluster.client.list(cluster.client.kind("Node"))
        nodes = {n["metadata"]["name"]: n for n in listed}
        assert {name: (n["spec"]["podCIDR"], n["spec"]["podCIDRs"]) for name, n in nodes.items()} == {
            "sim-node-1": ("10.244.0.0/24", ["10.244.0.0/24"]),
            "sim-node-2": ("10.244.1.0/24", ["10.244.1.0/24"]),
            "sim-node-3": ("10.244.2.0/24", ["10.244.2.0/24"])}
        for i, node in enumerate(("sim-node-1", "sim-node-2", "sim-node-3", "sim-node-3")):
            await cluster.pod(f"p{i}", [ctr("c", "sleep", "3600")], node=node)
        ips = [(await cluster.wait(f"p{i}", ready))["status"]["podIP"] for i in range(4)]
        assert ips[:2] == ["10.244.0.2", "10.244.1.2"] and sorted(ips[2:]) == ["10.244.2.2", "10.244.2.3"]


async def test_a_node_keeps_the_pod_cidr_it_has(tmp_path: Path, clock: trio.abc.Clock) -> None:
    core = ApiCore(Store.open_memory())
    client = LocalClient(core, field_manager="kubelet")
    for ns in ("default", "kube-node-lease"):
        await client.create(client.kind("Namespace"), None, {"metadata": {"name": ns}})
    await client.create(client.kind("Node"), None, {"metadata": {"name": "sim-node-1"},
                                                      "spec": {"podCIDR": "10.244.1.0/24",
                                                               "podCIDRs": ["10.244.1.0/24"]}})
    async with trio.open_nursery() as nursery:
        await nursery.start(NodeIpamController(client).run)
        cluster = Cluster(core, client, nursery, tmp_path, None)
        await cluster.start()
        listed, _ = await client.list(client.kind("Node"))
        cidrs = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in listed}
        assert cidrs == {"sim-node-1": "10.244.1.0/24", "sim-node-2": "10.244.0.0/24",
                         "sim-node-3": "10.244.2.0/24"}
        pod = await cluster.pod("p", [ctr("c", "sleep", "3600")])
        assert (await cluster.wait(pod["metadata"]["name"], ready))["status"]["podIP"] == "10.244.1.2"
        nursery.cancel_scope.cancel()


async def test_without_a_node_ipam_controller_the_nodes_stop_waiting_and_say_why(
        tmp_path: Path, clock: trio.abc.Clock) -> None:
    core = ApiCore(Store.open_memory())
    client = LocalClient(core, field_manager="kubelet")
    runtime = SimulatedRuntime(clock=SimClock.wall())
    nodes = SimulatedNodes(client, runtime, 2, state_dir=tmp_path, pod_cidr_timeout=30)
    async with trio.open_nursery() as nursery:
        await nursery.start(runtime.run)
        with trio.fail_after(60), pytest.raises(PodCIDRTimeout, match=(
                r"2 simulated node\(s\) \(sim-node-1, sim-node-2\.\.\.\) got no spec.podCIDR within 30 s: "
                r"is the node IPAM controller running")):
            await nodes.run()
        nursery.cancel_scope.cancel()


async def test_probes_pass_unless_scripted(tmp_path: Path, clock: trio.abc.Clock) -> None:
    probes = {"readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 2},
              "livenessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 2},
              "ports": [{"name": "http", "containerPort": 8080}]}
    async with open_cluster(tmp_path) as cluster:
        await cluster.pod("plain", [ctr("web", "httpd", "-f", "-p", "8080", **probes)])
        await cluster.pod("flaky", [ctr("web", "httpd", "-f", **probes)],
                          annotations={"sim.orchestra.io/probe-failure": "web/readiness after=20s for=20s"})
        pod = await cluster.wait("plain", ready)
        assert state(pod, "web")["ready"] and state(pod, "web")["restartCount"] == 0
        await cluster.wait("flaky", ready)
        await cluster.wait("flaky", lambda p: not ready(p), limit=30)  # 20 s, then 3 failures 2 s apart
        await cluster.wait("flaky", ready, limit=30)  # the window ends at 40 s
        assert state(await cluster.get("flaky"), "web")["restartCount"] == 0

        await cluster.pod("dying", [ctr("web", "httpd", **probes)],
                          annotations={"sim.orchestra.io/probe-failure": "*/liveness after=10s"})
        pod = await cluster.wait("dying", lambda p: state(p, "web").get("restartCount", 0) >= 2, limit=120)
        events, _ = await cluster.client.list(cluster.client.kind("Event"), "default")
        messages = {e["message"] for e in events if e["involvedObject"]["name"] == "dying"}
        assert "Liveness probe failed: dial tcp 10.244.0.4:8080: connect: connection refused" in messages
        assert "Container web failed liveness probe, will be restarted" in messages


async def test_grpc_probes_pass_unless_scripted(tmp_path: Path, clock: trio.abc.Clock) -> None:
    """microservices-demo's probes (gRPC health checks on the server's port) by the same rules as
    httpGet and tcpSocket: they pass, unless the pod's script fails them."""
    probes = {"readinessProbe": {"grpc": {"port": 7070}, "periodSeconds": 2},
              "livenessProbe": {"grpc": {"port": 7070, "service": "liveness"}, "periodSeconds": 2},
              "ports": [{"containerPort": 7070}]}
    async with open_cluster(tmp_path) as cluster:
        await cluster.pod("cart", [ctr("server", "/app/cartservice", **probes)])
        await cluster.pod("unready", [ctr("server", "/app/cartservice", **probes)],
                          annotations={"sim.orchestra.io/probe-failure": "server/readiness"})
        pod = await cluster.wait("cart", ready)
        assert state(pod, "server")["ready"] and state(pod, "server")["restartCount"] == 0
        await cluster.wait("unready", lambda p: state(p, "server").get("started") is True)
        await trio.sleep(20)
        pod = await cluster.get("unready")
        assert not ready(pod) and state(pod, "server")["restartCount"] == 0  # liveness still passes
        events, _ = await cluster.client.list(cluster.client.kind("Event"), "default")
        messages = {e["message"] for e in events if e["involvedObject"]["name"] == "unready"}
        assert 'Readiness probe failed: service unhealthy (responded with "NOT_SERVING")' in messages


def container_id(pod: Obj, name: str, key: str = "containerStatuses") -> str:
    return str(state(pod, name, key)["containerID"]).split("://", 1)[1]


async def test_native_sidecars_serve_and_a_job_with_one_completes(
        tmp_path: Path, clock: trio.abc.Clock) -> None:
    """A restartable init container runs a server beside the app (it never "completes" like an init
    container); a Job's pod completes when its container does, and the sidecar is stopped then."""
    job_owner = {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "job-uid", "controller": True}
    proxy = ctr("proxy", "envoy", "-c", "/etc/envoy/envoy.yaml", restartPolicy="Always")
    async with open_cluster(tmp_path) as cluster:
        await cluster.pod("web", [ctr("app", "sleep", "3600")], initContainers=[proxy])
        await cluster.pod("job", [ctr("work", "sh", "-c", "echo working; sleep 5")], initContainers=[proxy],
                          restartPolicy="Never", metadata={"ownerReferences": [job_owner]})
        await cluster.pod("job-unknown", [ctr("work", "python", "run.py")], initContainers=[proxy],
                          restartPolicy="Never", metadata={"ownerReferences": [job_owner]})
        await cluster.wait("web", ready)
        await trio.sleep(30)
        pod = await cluster.get("web")
        sidecar = state(pod, "proxy", "initContainerStatuses")
        assert sidecar["ready"] and sidecar["started"] and "running" in sidecar["state"]
        assert sidecar["restartCount"] == 0
        assert cluster.runtime is not None
        served = await cluster.runtime.exec_run(container_id(pod, "app"),
                                                ["wget", "-qO-", "http://localhost:9901/ready"], timeout=5)
        assert served.exit_code == 0  # the sidecar serves while the main container runs
        for name in ("job", "job-unknown"):
            pod = await cluster.wait(name, lambda p: p["status"].get("phase") in ("Succeeded", "Failed"))
            assert pod["status"]["phase"] == "Succeeded", pod["status"]
            work = state(pod, "work")["state"]["terminated"]
            assert (work["exitCode"], work["reason"]) == (0, "Completed")
            stopped = state(pod, "proxy", "initContainerStatuses")["state"]["terminated"]
            assert stopped["exitCode"] == 143  # SIGTERM once the Job's container finished
        assert (await cluster.get("web"))["status"]["phase"] == "Running"


async def test_a_bad_annotation_is_a_warning_event(tmp_path: Path, clock: trio.abc.Clock) -> None:
    async with open_cluster(tmp_path) as cluster:
        await cluster.pod("bad", [ctr("c", "sleep", "3600")],
                          annotations={"sim.orchestra.io/exit": "c code=x"})
        await cluster.wait("bad", ready)
        for _ in range(20):
            events, _ = await cluster.client.list(cluster.client.kind("Event"), "default")
            warnings = [e for e in events if e["reason"] == "InvalidSimulationScript"]
            if warnings:
                break
            await trio.sleep(1)
        assert warnings[0]["type"] == "Warning" and warnings[0]["involvedObject"]["name"] == "bad"
        assert "sim.orchestra.io/exit: invalid code 'x'" in warnings[0]["message"]


async def test_exec_probe_sees_the_files_of_the_command(tmp_path: Path, clock: trio.abc.Clock) -> None:
    """Kubernetes' own liveness example: the file goes away after 30 s, the probe fails, kubelet restarts."""
    liveness = {"livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}, "initialDelaySeconds": 5,
                                  "periodSeconds": 5}}
    async with open_cluster(tmp_path) as cluster:
        await cluster.pod("liveness-exec", [{
            "name": "liveness", "image": IMAGE,
            "args": ["/bin/sh", "-c", "touch /tmp/healthy; sleep 30; rm -f /tmp/healthy; sleep 600"],
            **liveness}])
        start = trio.current_time()
        await cluster.wait("liveness-exec", lambda p: state(p, "liveness").get("restartCount") == 1,
                           limit=120)
        # 30 s, then 3 failures 5 s apart, then the grace period
        assert 40 <= trio.current_time() - start <= 80
        events, _ = await cluster.client.list(cluster.client.kind("Event"), "default")
        failed = "Liveness probe failed: cat: can't open '/tmp/healthy': No such file or directory"
        assert any(failed in e["message"] for e in events)


async def test_init_containers_and_job_pods_complete(tmp_path: Path, clock: trio.abc.Clock) -> None:
    job_owner = {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "job-uid", "controller": True}
    async with open_cluster(tmp_path) as cluster:
        await cluster.pod("init", [ctr("app", "nginx")],
                          initContainers=[ctr("setup", "./configure", "--all")])
        await cluster.pod("job", [ctr("work", "python", "run.py")], restartPolicy="Never",
                          metadata={"ownerReferences": [job_owner]})
        await cluster.pod("slow-job", [ctr("work", "python", "run.py")], restartPolicy="Never",
                          metadata={"ownerReferences": [job_owner]},
                          annotations={"sim.orchestra.io/completion-time": "30s"})
        await cluster.pod("server", [ctr("work", "python", "serve.py")], restartPolicy="Never")
        start = trio.current_time()
        pod = await cluster.wait("init", ready)
        init = state(pod, "setup", "initContainerStatuses")["state"]["terminated"]
        assert (init["exitCode"], init["reason"]) == (0, "Completed")
        pod = await cluster.wait("job", lambda p: p["status"].get("phase") == "Succeeded")
        assert trio.current_time() - start < 10
        pod = await cluster.wait("slow-job", lambda p: p["status"].get("phase") == "Succeeded")
        assert trio.current_time() - start >= 30
        assert (await cluster.get("server"))["status"]["phase"] == "Running"  # not a Job's pod: it serves on


async def test_restart_adopts_every_pod_unchanged(tmp_path: Path, clock: trio.abc.Clock) -> None:
    async with open_cluster(tmp_path, tmp_path / "runtime") as cluster:
        for i in range(3):
            await cluster.pod(f"p{i}", [ctr("c", "sleep", "3600")], node=f"sim-node-{i + 1}")
        await cluster.pod("crasher", [ctr("c", "sh", "-c", "sleep 1; exit 1")])
        await cluster.wait("crasher", lambda p: state(p).get("restartCount", 0) >= 2)
        for i in range(3):
            await cluster.wait(f"p{i}", ready)
        await trio.sleep(1)

        def fingerprint(pod: Obj) -> tuple[Any, ...]:
            st = state(pod)
            return (pod["metadata"]["uid"], pod["status"]["podIP"], st["containerID"], st["restartCount"],
                    (st["state"].get("running") or {}).get("startedAt"))

        before = {f"p{i}": fingerprint(await cluster.get(f"p{i}")) for i in range(3)}
        crasher = fingerprint(await cluster.get("crasher"))
        sandboxes = {s.id for s in await cluster.runtime.list_sandboxes()}  # type: ignore[union-attr]
        await cluster.stop()
        await trio.sleep(5)
        await cluster.start()
        await trio.sleep(5)
        assert {s.id for s in await cluster.runtime.list_sandboxes()} == sandboxes  # type: ignore[union-attr]
        for name, print_ in before.items():
            pod = await cluster.wait(name, ready)
            assert fingerprint(pod) == print_
        after = fingerprint(await cluster.get("crasher"))
        assert after[:2] == crasher[:2] and after[3] >= crasher[3]  # same pod and IP; it goes on crashing


async def test_a_restart_with_fewer_nodes_removes_the_others_pods(tmp_path: Path,
                                                                  clock: trio.abc.Clock) -> None:
    async with open_cluster(tmp_path, tmp_path / "runtime") as cluster:
        for node in ("sim-node-1", "sim-node-3"):
            await cluster.pod(node, [ctr("c", "sleep", "3600")], node=node)
            await cluster.wait(node, ready)
        await cluster.stop()
        cluster.count = 2
        await cluster.start()
        sandboxes = await cluster.runtime.list_sandboxes()  # type: ignore[union-attr]
        assert [s.labels["orchestra.io/node"] for s in sandboxes] == ["sim-node-1"]
