"""A node fails: Unknown after the grace period, pods evicted after their toleration, recreated by
their ReplicaSet and scheduled on a healthy node — the whole loop on a virtual clock.

Real store, API core, cluster controllers (Kubernetes' default timings), scheduler, ReplicaSet
controller and two simulated node agents on the simulated runtime; the failure is one agent stopping.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import trio
import trio.testing

from orchestra.api.request.core import ApiCore
from orchestra.app.bootstrap import bootstrap
from orchestra.client.local import LocalClient
from orchestra.node.simulated import SimulatedNodes
from orchestra.reconcilers.cluster import run_cluster_controllers
from orchestra.reconcilers.node_lifecycle import DEFAULT_TIMINGS
from orchestra.reconcilers.scheduler import Scheduler
from orchestra.reconcilers.workloads.replicaset import ReplicaSetController
from orchestra.runtime.simulated import SimScript, SimulatedRuntime
from orchestra.store import Store

Obj = dict[str, Any]


def replicaset(replicas: int) -> Obj:
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "localhost/busybox:latest"}]},
            },
        },
    }


async def test_failed_node_pods_are_evicted_and_recreated_elsewhere(autojump_clock: trio.testing.MockClock,
                                                                   tmp_path: Path) -> None:
    store = Store.open_memory()
    core = ApiCore(store)
    await bootstrap(core)
    client = LocalClient(core)
    pod_rt = client.kind("Pod")

    def pods() -> list[Obj]:
        return [p for p in core.list(pod_rt, "default").items if not p["metadata"].get("deletionTimestamp")]

    def running_on(node: str) -> list[Obj]:
        return [
            p
            for p in pods()
            if p["spec"].get("nodeName") == node and p.get("status", {}).get("phase") == "Running"
        ]

    async def until(pred: Any, limit: float = 2_000.0) -> float:
        with trio.fail_after(limit):
            while not pred():  # noqa: ASYNC110 - polling the API's state on the virtual clock
                await trio.sleep(0.5)
        return trio.current_time()

    with trio.fail_after(5_000):
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(run_cluster_controllers, client, timings=DEFAULT_TIMINGS))
            await nursery.start(Scheduler(client, seed=1).run)
            await nursery.start(ReplicaSetController(client).run)
            runtime = SimulatedRuntime(SimScript(pull_any=True))
            await nursery.start(runtime.run)
            healthy = SimulatedNodes(
                client, runtime, 1, state_dir=tmp_path / "a", name_prefix="good-", heartbeat_jitter=0.0
            )
            await nursery.start(healthy.run)
            doomed_scope = trio.CancelScope()
            doomed = SimulatedNodes(
                client, runtime, 1, state_dir=tmp_path / "b", name_prefix="bad-", heartbeat_jitter=0.0
            )
            await nursery.start(_run_until_cancelled, doomed, doomed_scope)
            # cordon the healthy node while pods are placed, so they all land on the node that will fail
            await client.patch(client.kind("Node"), None, "good-1", {"spec": {"unschedulable": True}})
            await client.create(client.kind("ReplicaSet"), "default", replicaset(3))
            await until(lambda: len(running_on("bad-1")) == 3)
            await client.patch(client.kind("Node"), None, "good-1", {"spec": {"unschedulable": False}})
            failed_at = trio.current_time()
            doomed_scope.cancel()  # the node's agent stops: no more Lease renewals, no status

            node_rt = client.kind("Node")

            def ready_status() -> str:
                node = core.get(node_rt, None, "bad-1")
                return next(c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready")

            unknown_at = await until(lambda: ready_status() == "Unknown")
            # the last renewal was at most one renew period (10 s) before the stop; grace is 40 s
            assert 30.0 <= unknown_at - failed_at <= 41.0, unknown_at - failed_at
            taints = {
                t["key"]: t["effect"]
                for t in core.get(node_rt, None, "bad-1")["spec"].get("taints", [])
                if t["effect"] == "NoExecute"
            }
            assert taints == {"node.kubernetes.io/unreachable": "NoExecute"}

            moved_at = await until(lambda: len(running_on("good-1")) == 3 and not running_on("bad-1"))
            # pods tolerate the unreachable taint for 300 s (the API's default toleration)
            assert 300.0 <= moved_at - unknown_at <= 320.0, moved_at - unknown_at
            assert len(pods()) == 3
            nursery.cancel_scope.cancel()
    store.close()


async def _run_until_cancelled(nodes: SimulatedNodes, scope: trio.CancelScope, *,
                               task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    with scope:
        async with trio.open_nursery() as inner:
            await inner.start(nodes.run)
            task_status.started()
