"""One bad object never takes the cluster down (the `orchestra up` wiring: run_cluster with one
simulated node, the real store, API core, controllers, scheduler and node agents).

kube-apiserver 1.32 accepts each of these quantities (it refuses none for its size; see
orchestra.objects.quantity), so orchestra accepts them too; the scheduler then treats the pod as asking
for more than any node has: it stays Pending with kube's "Insufficient <resource>" FailedScheduling,
and the cluster goes on scheduling and running everything else. Objects stored behind the API's back
(by an older version, or an edited etcd) are loaded on a restart without crashing anything, and a
component that crashes all the same is restarted by the supervisor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
import trio.testing

from orchestra.app import ClusterConfig, run_cluster
from orchestra.app.config import Cluster
from orchestra.client.local import LocalClient
from orchestra.node.agent import NodeAgent

Obj = dict[str, Any]
NODE = "sim-node-1"


def container(**resources: Obj) -> Obj:
    return {"name": "c", "image": "busybox", **({"resources": resources} if resources else {})}


def pod(name: str, *containers: Obj, **spec: Any) -> Obj:
    return {"metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": list(containers) or [container()], **spec}}


def deployment(name: str, *containers: Obj) -> Obj:
    return {"metadata": {"name": name}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                                                 "template": pod(name, *containers)}}


# (the object kube-apiserver accepts, the resource the scheduler finds insufficient)
VARIANTS: dict[str, tuple[str, Obj, str]] = {
    "cpu-1e20": ("Pod", pod("bad", container(requests={"cpu": "1e20"})), "cpu"),
    "cpu-1e400": ("Pod", pod("bad", container(requests={"cpu": "1e400"})), "cpu"),
    "cpu-milli-over-int64": ("Pod", pod("bad", container(requests={"cpu": "9223372036854776k"})), "cpu"),
    "memory-100Ei": ("Pod", pod("bad", container(requests={"memory": "100Ei"})), "memory"),
    "memory-limit-1e30": ("Pod", pod("bad", container(limits={"memory": "1e30"})), "memory"),
    "extended-1e30": ("Pod", pod("bad", container(limits={"example.com/foo": "1e30"})), "example.com/foo"),
    "ephemeral-storage-1e25": ("Pod", pod("bad", container(requests={"ephemeral-storage": "1e25"})),
                               "ephemeral-storage"),
    "overhead-1e20": ("Pod", pod("bad", overhead={"cpu": "1e20"}), "cpu"),
    "deployment-template-cpu-1e20": ("Deployment", deployment("bad", container(requests={"cpu": "1e20"})),
                                     "cpu"),
}


@asynccontextmanager
async def cluster(state: Path, **config: Any) -> AsyncIterator[Cluster]:
    cfg = ClusterConfig(state_dir=state, listen_port=0, podman=False, network=False, **config)
    async with trio.open_nursery() as nursery:
        running: Cluster = await nursery.start(run_cluster, cfg)
        yield running
        nursery.cancel_scope.cancel()


def get(c: Cluster, kind: str, name: str) -> Obj | None:
    rt = c.core.registry.by_kind(kind)
    assert rt is not None
    return c.core.get(rt, "default", name) if c.store.get(rt.key("default", name)) else None


def pods_of(c: Cluster, app: str) -> list[Obj]:
    rt = c.core.registry.by_kind("Pod")
    assert rt is not None
    return [p for p in c.core.list(rt, "default").items if p["metadata"]["labels"].get("app") == app]


def phase(p: Obj | None) -> str:
    return str(((p or {}).get("status") or {}).get("phase") or "")


def scheduled(p: Obj | None) -> Obj:
    conditions = ((p or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "PodScheduled"), {})


async def until(pred: Callable[[], Any], limit: float = 300.0) -> Any:
    """Poll `pred` (virtual time) until it gives something true; that is returned."""
    with trio.fail_after(limit):
        while True:
            got = pred()
            if got:
                return got
            await trio.sleep(0.1)


async def create(c: Cluster, kind: str, obj: Obj) -> Obj:
    client = LocalClient(c.core)
    return await client.create(client.kind(kind), "default", obj)


def no_crashes(c: Cluster) -> bool:
    return all(s.crashes == 0 and s.running for s in c.supervisor.statistics().values())


@pytest.mark.parametrize("variant", VARIANTS.values(), ids=VARIANTS.keys())
async def test_a_pod_asking_for_more_than_any_node_has_stays_pending_and_the_cluster_goes_on(
        tmp_path: Path, autojump_clock: trio.testing.MockClock, variant: tuple[str, Obj, str]) -> None:
    kind, obj, resource = variant
    with trio.fail_after(600):
        async with cluster(tmp_path, store="memory", simulate_nodes=1) as c:
            await create(c, kind, obj)  # accepted, as kube-apiserver accepts it
            (bad,) = await until(lambda: [p for p in pods_of(c, "bad")
                                          if scheduled(p).get("status") == "False"])
            assert scheduled(bad)["reason"] == "Unschedulable"
            insufficient = f"0/1 nodes are available: 1 Insufficient {resource}."
            assert scheduled(bad)["message"].startswith(insufficient)
            await create(c, "Pod", pod("good"))
            await until(lambda: phase(get(c, "Pod", "good")) == "Running")
            event_rt = c.core.registry.by_kind("Event")
            assert event_rt is not None
            events = [e for e in c.core.list(event_rt, "default").items if e["reason"] == "FailedScheduling"
                      and e["involvedObject"]["name"] == bad["metadata"]["name"]]
            assert events and events[0]["type"] == "Warning"
            assert f"Insufficient {resource}" in events[0]["message"]
            assert phase(get(c, "Pod", bad["metadata"]["name"])) == "Pending"
            assert no_crashes(c)


def store_raw(c: Cluster, name: str, change: Callable[[Obj], None]) -> None:
    """Rewrite a stored pod behind the API's back: what an older version (or an edited etcd) left."""
    rt = c.core.registry.by_kind("Pod")
    assert rt is not None
    kv = c.store.get(rt.key("default", name))
    assert kv is not None
    obj = orjson.loads(kv.value)
    change(obj)
    c.store.put(kv.key, orjson.dumps(obj))


async def test_bad_objects_in_a_durable_store_are_loaded_on_restart_without_crashing_anything(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(600):
        async with cluster(tmp_path, store="durable", fsync="never", controllers=False) as c:
            await create(c, "Deployment", deployment("big", container(requests={"cpu": "1e20"})))
            await create(c, "Pod", pod("huge", container(requests={"cpu": "1e20"},
                                                         limits={"memory": "1e30"})))
            await create(c, "Pod", pod("prio"))
            # no int32 (the API refuses it now): stored by an older version, or an edited etcd
            store_raw(c, "prio", lambda p: p["spec"].update(priority="high"))
            env = [{"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}}]
            huge_limits = container(limits={"memory": "1e30", "cpu": "1e20"})
            await create(c, "Pod", pod("bound-huge", {**huge_limits, "env": env}, nodeName=NODE))
            ports = [{"containerPort": 80, "hostPort": 18080}]
            await create(c, "Pod", pod("bound-port", {**container(), "ports": ports}, nodeName=NODE))
            store_raw(c, "bound-port", lambda p: p["spec"]["containers"][0]["ports"][0].update(
                containerPort="http"))
            await c.store.wait_durable(c.store.revision)
        async with cluster(tmp_path, store="durable", fsync="never", simulate_nodes=1) as c:
            await create(c, "Pod", pod("good"))
            await until(lambda: phase(get(c, "Pod", "good")) == "Running")
            await until(lambda: phase(get(c, "Pod", "bound-huge")) == "Running")
            insufficient = "0/1 nodes are available: 1 Insufficient cpu"  # once the node has registered
            for name in ("huge", *(p["metadata"]["name"] for p in pods_of(c, "big"))):
                await until(lambda n=name: scheduled(get(c, "Pod", n)).get(  # type: ignore[misc]
                    "message", "").startswith(insufficient))
            assert len(pods_of(c, "big")) == 1
            await trio.sleep(10)
            scheduler = next(x for x in c.controllers if x.name == "default-scheduler")
            assert scheduler.statistics().handler_errors >= 3  # "prio": retried with backoff
            prio = get(c, "Pod", "prio")
            assert prio is not None and not scheduled(prio) and prio["spec"]["priority"] == "high"
            (nodes,) = c.agents
            assert nodes.statistics().pods >= 3
            assert nodes.agents[NODE].statistics().counters["sync_crashes"] >= 3  # "bound-port": retried
            assert phase(get(c, "Pod", "bound-port")) != "Running"
            assert no_crashes(c)


async def test_a_crashed_component_is_restarted_and_the_cluster_goes_on(
        tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch) -> None:
    with trio.fail_after(600):
        async with cluster(tmp_path, store="memory", simulate_nodes=1) as c:
            await create(c, "Pod", pod("before"))
            await until(lambda: phase(get(c, "Pod", "before")) == "Running")
            real = NodeAgent.handle_runtime_event
            calls = {"n": 0}

            def handle_runtime_event(self: NodeAgent, event: Any) -> None:  # one bug, once
                calls["n"] += 1
                if calls["n"] == 1:
                    raise RuntimeError("runtime event bug")
                real(self, event)

            monkeypatch.setattr(NodeAgent, "handle_runtime_event", handle_runtime_event)
            await create(c, "Pod", pod("after"))  # its container's start event hits the bug
            await until(lambda: c.supervisor.statistics()["simulated-nodes"].crashes == 1)
            await until(lambda: phase(get(c, "Pod", "after")) == "Running")
            stats = c.supervisor.statistics()
            assert (stats["simulated-nodes"].starts, stats["simulated-nodes"].running) == (2, True)
            assert phase(get(c, "Pod", "before")) == "Running"
            assert all(s.crashes == 0 for name, s in stats.items() if name != "simulated-nodes")
            await create(c, "Deployment", deployment("web"))
            await until(lambda: [p for p in pods_of(c, "web") if phase(p) == "Running"])
