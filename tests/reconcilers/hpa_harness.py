"""Test support for the HPA controller: a whole control plane on trio's virtual clock — the real
store, API core, scheduler, Deployment and ReplicaSet controllers, one simulated node running the
pods on the simulated runtime, node/metrics.py's collector serving the resource metrics API in
process (pods' usage scripted by their `orchestra.io/simulated-cpu` annotation) and the HPA
controller reading it through LocalMetricsClient."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import trio

from orchestra.api.errors import NotFound
from orchestra.api.policy.tolerationseconds import DefaultTolerationSeconds
from orchestra.api.request.core import ApiCore
from orchestra.app.bootstrap import bootstrap
from orchestra.client.local import LocalClient, LocalMetricsClient
from orchestra.controller.clock import Clock, virtual_clock
from orchestra.node.metrics import SIMULATED_CPU, UsageCollector
from orchestra.node.simulated import SimulatedNodes
from orchestra.reconcilers.autoscaling import HorizontalController, HpaTimings
from orchestra.reconcilers.scheduler import Scheduler
from orchestra.reconcilers.workloads.deployment import DeploymentController
from orchestra.reconcilers.workloads.replicaset import ReplicaSetController
from orchestra.runtime.simulated import SimScript, SimulatedRuntime
from orchestra.store import Store

Obj = dict[str, Any]


@attrs.define
class Cluster:
    core: ApiCore
    client: LocalClient
    hpa: HorizontalController
    clock: Clock

    def rt(self, kind: str) -> Any:
        return self.client.kind(kind)

    def get(self, kind: str, name: str) -> Obj:
        return self.core.get(self.rt(kind), "default", name)

    def pods(self, app: str = "web") -> list[Obj]:
        return [
            p
            for p in self.core.list(self.rt("Pod"), "default").items
            if p["metadata"].get("labels", {}).get("app") == app
            and not p["metadata"].get("deletionTimestamp")
        ]

    def running(self, app: str = "web") -> list[Obj]:
        return [p for p in self.pods(app) if p.get("status", {}).get("phase") == "Running"]

    def replicas(self, name: str = "web") -> int:
        return int(self.get("Deployment", name)["spec"]["replicas"])

    def scaled_to(self, replicas: int, name: str = "web") -> bool:
        """The target has `replicas` and the HPA's status says so (it is written after the scale)."""
        status = self.get("HorizontalPodAutoscaler", name).get("status", {})
        return self.replicas(name) == replicas and status.get("desiredReplicas") == replicas

    def condition(self, name: str, ctype: str) -> Obj:
        hpa = self.get("HorizontalPodAutoscaler", name)
        return next(c for c in hpa["status"].get("conditions", []) if c["type"] == ctype)

    def events(self, name: str) -> list[tuple[str, str, str]]:
        out = [
            (e["type"], e["reason"], e["message"])
            for e in self.core.list(self.rt("Event"), "default").items
            if e["involvedObject"].get("kind") == "HorizontalPodAutoscaler"
            and e["involvedObject"]["name"] == name
        ]
        return out

    async def set_load(self, cpu: str, app: str = "web") -> None:
        """Every pod of the app (and its template, for pods still to come) now uses `cpu`."""
        for pod in self.pods(app):
            try:
                await self.client.patch(
                    self.rt("Pod"),
                    "default",
                    pod["metadata"]["name"],
                    {"metadata": {"annotations": {SIMULATED_CPU: cpu}}},
                )
            except NotFound:
                continue  # deleted in the meantime
        template = {"spec": {"template": {"metadata": {"annotations": {SIMULATED_CPU: cpu}}}}}
        await self.client.patch(self.rt("Deployment"), "default", app, template)

    async def until(self, pred: Any, limit: float = 3_000.0, step: float = 0.5) -> float:
        with trio.fail_after(limit):
            while not pred():  # noqa: ASYNC110 - polling the API's state on the virtual clock
                await trio.sleep(step)
        return trio.current_time()


def deployment(
    name: str = "web",
    replicas: int = 1,
    *,
    cpu: str | None = "50m",
    request: str | None = "100m",
    containers: int = 1,
) -> Obj:
    labels = {"app": name}
    resources = {"requests": {"cpu": request}} if request else {}
    template: Obj = {
        "metadata": {"labels": labels},
        "spec": {
            "containers": [
                {
                    "name": f"c{i}" if i else "c",
                    "image": "localhost/busybox:latest",
                    "command": ["sleep", "infinity"],
                    "resources": resources,
                }
                for i in range(containers)
            ],
            "terminationGracePeriodSeconds": 0,
        },
    }
    if cpu is not None:
        template["metadata"]["annotations"] = {SIMULATED_CPU: cpu}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": template},
    }


def hpa(
    name: str = "web",
    *,
    min_replicas: int | None = 1,
    max_replicas: int = 10,
    target: int = 50,
    behavior: Obj | None = None,
    metrics: list[Obj] | None = None,
    kind: str = "Deployment",
    api_version: str = "apps/v1",
) -> Obj:
    spec: Obj = {
        "scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": name},
        "maxReplicas": max_replicas,
        "metrics": metrics
        or [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}},
            }
        ],
    }
    if min_replicas is not None:
        spec["minReplicas"] = min_replicas
    if behavior is not None:
        spec["behavior"] = behavior
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": spec,
    }


@asynccontextmanager
async def cluster(
    tmp_path: Path, *, nodes: int = 1, timings: HpaTimings | None = None
) -> AsyncIterator[Cluster]:
    store = Store.open_memory()
    core = ApiCore(store, admission=(DefaultTolerationSeconds(),))
    await bootstrap(core)
    client = LocalClient(core)
    # Pods are stamped with the wall clock (node agent); the controller and the collector read the
    # same calendar moving at trio's pace, so pod ages agree with the virtual time that passes.
    clock = virtual_clock(datetime.now(UTC) - timedelta(seconds=trio.current_time()))
    pod_rt = client.kind("Pod")

    async with trio.open_nursery() as nursery:
        runtime = SimulatedRuntime(SimScript(pull_any=True))
        await nursery.start(runtime.run)
        if nodes:
            sim = SimulatedNodes(client, runtime, nodes, state_dir=tmp_path / "nodes", heartbeat_jitter=0.0)
            await nursery.start(sim.run)
        await nursery.start(Scheduler(client, seed=1).run)
        await nursery.start(ReplicaSetController(client).run)
        await nursery.start(DeploymentController(client).run)
        collector = UsageCollector(
            lambda: {"*": runtime}, set, pods=lambda ns: core.list(pod_rt, ns).items, clock=clock
        )
        controller = HorizontalController(
            client,
            LocalMetricsClient(core, collector),
            clock=clock,
            **({"timings": timings} if timings else {}),
        )
        await nursery.start(controller.run)
        yield Cluster(core, client, controller, clock)
        nursery.cancel_scope.cancel()
    store.close()
