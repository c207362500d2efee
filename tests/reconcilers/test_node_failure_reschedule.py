"""A node fails: Unknown after the grace period, pods evicted after their toleration, recreated by
their ReplicaSet and scheduled on a healthy node — the whole loop on a virtual clock.

Real store, API core (with the DefaultTolerationSeconds admission plugin), cluster controllers,
scheduler, ReplicaSet controller and two simulated node agents on the simulated runtime; the failure
is one agent stopping. Twice: with Kubernetes' timings (40 s grace, 300 s tolerations) and with
`orchestra up --timings fast`'s (10 s grace, kubelets beating every 2.5 s, 30 s tolerations).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from orchestra.api.policy.tolerationseconds import DefaultTolerationSeconds
from orchestra.api.request.core import ApiCore
from orchestra.app.bootstrap import bootstrap
from orchestra.client.local import LocalClient
from orchestra.node.simulated import SimulatedNodes
from orchestra.reconcilers.cluster import run_cluster_controllers
from orchestra.reconcilers.node_lifecycle import DEFAULT_TIMINGS, FAST_TIMINGS, NodeLifecycleTimings
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


@attrs.frozen
class Profile:
    timings: NodeLifecycleTimings
    toleration_seconds: int  # both of kube-apiserver's --default-*-toleration-seconds
    heartbeat: dict[str, Any]  # the node agents' beat (what `orchestra up` gives them)
    unknown_after: tuple[float, float]  # Ready Unknown, seconds after the agent stops
    moved_within: float  # all pods Running elsewhere, at most this long after the last heartbeat


PROFILES = [
    pytest.param(Profile(DEFAULT_TIMINGS, 300, {}, (30.0, 41.0), 361.0), id="kube-defaults"),
    pytest.param(Profile(FAST_TIMINGS, 30, {"lease_renew_seconds": 2.5, "lease_duration_seconds": 10,
                                            "status_update_seconds": 2.5}, (7.5, 11.0), 45.0), id="fast"),
]


@pytest.mark.parametrize("profile", PROFILES)
async def test_failed_node_pods_are_evicted_and_recreated_elsewhere(autojump_clock: trio.testing.MockClock,
                                                                   tmp_path: Path, profile: Profile) -> None:
    store = Store.open_memory()
    seconds = profile.toleration_seconds
    core = ApiCore(store, admission=(DefaultTolerationSeconds(seconds, seconds),))
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
            await nursery.start(functools.partial(run_cluster_controllers, client, timings=profile.timings))
            await nursery.start(Scheduler(client, seed=1).run)
            await nursery.start(ReplicaSetController(client).run)
            runtime = SimulatedRuntime(SimScript(pull_any=True))
            await nursery.start(runtime.run)
            healthy = SimulatedNodes(client, runtime, 1, state_dir=tmp_path / "a", name_prefix="good-",
                                     heartbeat_jitter=0.0, **profile.heartbeat)
            await nursery.start(healthy.run)
            doomed_scope = trio.CancelScope()
            doomed = SimulatedNodes(client, runtime, 1, state_dir=tmp_path / "b", name_prefix="bad-",
                                    heartbeat_jitter=0.0, **profile.heartbeat)
            await nursery.start(_run_until_cancelled, doomed, doomed_scope)
            # cordon the healthy node while pods are placed, so they all land on the node that will fail
            await client.patch(client.kind("Node"), None, "good-1", {"spec": {"unschedulable": True}})
            await client.create(client.kind("ReplicaSet"), "default", replicaset(3))
            await until(lambda: len(running_on("bad-1")) == 3)
            for p in pods():  # the admission plugin's tolerations, with the configured seconds
                assert [(t["key"], t["tolerationSeconds"]) for t in p["spec"]["tolerations"]] == [
                    ("node.kubernetes.io/not-ready", seconds), ("node.kubernetes.io/unreachable", seconds)]
            await client.patch(client.kind("Node"), None, "good-1", {"spec": {"unschedulable": False}})
            failed_at = trio.current_time()
            doomed_scope.cancel()  # the node's agent stops: no more Lease renewals, no status
            beats = doomed.agents["bad-1"].registration
            assert beats is not None and beats.stats.last_renew is not None
            last_beat = max(beats.stats.last_renew, beats.stats.last_status or 0.0)

            node_rt = client.kind("Node")

            def ready_status() -> str:
                node = core.get(node_rt, None, "bad-1")
                return next(c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready")

            unknown_at = await until(lambda: ready_status() == "Unknown")
            # the last beat was at most one renew period before the stop; then the grace period
            low, high = profile.unknown_after
            assert low <= unknown_at - failed_at <= high, unknown_at - failed_at
            assert unknown_at - last_beat <= profile.timings.grace_period + 1.0, unknown_at - last_beat
            taints = {
                t["key"]: t["effect"]
                for t in core.get(node_rt, None, "bad-1")["spec"].get("taints", [])
                if t["effect"] == "NoExecute"
            }
            assert taints == {"node.kubernetes.io/unreachable": "NoExecute"}

            moved_at = await until(lambda: len(running_on("good-1")) == 3 and not running_on("bad-1"))
            # pods tolerate the unreachable taint for their tolerationSeconds, then move at once
            assert seconds <= moved_at - unknown_at <= seconds + 20.0, moved_at - unknown_at
            assert moved_at - last_beat <= profile.moved_within, moved_at - last_beat
            assert len(pods()) == 3
            nursery.cancel_scope.cancel()
    store.close()


async def _run_until_cancelled(nodes: SimulatedNodes, scope: trio.CancelScope, *,
                               task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    with scope:
        async with trio.open_nursery() as inner:
            await inner.start(nodes.run)
            task_status.started()
