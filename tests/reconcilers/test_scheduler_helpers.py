"""Helpers shared by the scheduler tests (no tests here): nodes and pods as dicts, a running Scheduler,
waits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from orchestra.reconcilers.scheduler import Scheduler
from tests.controller.harness import Api, wait_for

Obj = dict[str, Any]


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[Obj] | None = None,
    unschedulable: bool = False,
) -> Obj:
    spec: Obj = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    resources = {"cpu": cpu, "memory": memory, "pods": pods}
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }


def spod(
    name: str,
    *,
    cpu: str | None = None,
    memory: str | None = None,
    labels: dict[str, str] | None = None,
    node_name: str | None = None,
    host_port: int | None = None,
    **spec: Any,
) -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    container: Obj = {"name": "c", "image": "busybox"}
    if requests:
        container["resources"] = {"requests": requests}
    if host_port:
        container["ports"] = [{"containerPort": host_port, "hostPort": host_port}]
    obj: Obj = {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [container], **spec},
    }
    if node_name:
        obj["spec"]["nodeName"] = node_name
    return obj


async def add_priority_classes(api: Api, **values: int) -> None:
    """PriorityClasses by name (a name ending in -never gets preemptionPolicy Never); pods then use
    spec.priorityClassName, since the Priority admission plugin rejects a bare spec.priority."""
    for name, value in values.items():
        pc: Obj = {"metadata": {"name": name.replace("_", "-")}, "value": value}
        if name.endswith("never"):
            pc["preemptionPolicy"] = "Never"
        await api.create("PriorityClass", pc, None)


async def add_nodes(api: Api, *nodes: Obj) -> None:
    for n in nodes:
        await api.create("Node", n, None)


@asynccontextmanager
async def running(api: Api, **kwargs: Any) -> AsyncIterator[Scheduler]:
    scheduler = Scheduler(api.client, seed=kwargs.pop("seed", 7), **kwargs)
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run)
        yield scheduler
        nursery.cancel_scope.cancel()


def node_of(api: Api, name: str, namespace: str = "default") -> str | None:
    obj = api.get("Pod", name, namespace)
    return (obj or {}).get("spec", {}).get("nodeName")


def scheduled_condition(api: Api, name: str, namespace: str = "default") -> Obj | None:
    obj = api.get("Pod", name, namespace) or {}
    return next(
        (c for c in obj.get("status", {}).get("conditions") or [] if c.get("type") == "PodScheduled"), None
    )


async def wait_bound(api: Api, *names: str, limit: float = 100.0) -> float:
    return await wait_for(api, lambda: all(node_of(api, n) for n in names), limit=limit)


async def wait_unschedulable(api: Api, name: str, limit: float = 100.0) -> Obj:
    await wait_for(api, lambda: (scheduled_condition(api, name) or {}).get("status") == "False", limit=limit)
    cond = scheduled_condition(api, name)
    assert cond is not None
    return cond


def events(api: Api, reason: str, name: str | None = None) -> list[Obj]:
    return [e for e in api.list("Event") if e.get("reason") == reason
            and (name is None or e["involvedObject"]["name"] == name)]
