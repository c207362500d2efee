"""Shared test harness: the real in-memory store, API core and LocalClient (no mocks)."""

from __future__ import annotations

from typing import Any

import attrs
import trio
import trio.testing

from orchestra.api.policy.tolerationseconds import DefaultTolerationSeconds
from orchestra.api.request.core import ApiCore
from orchestra.client.local import LocalClient
from orchestra.store import Store

Obj = dict[str, Any]


@attrs.define
class Api:
    store: Store
    core: ApiCore
    client: LocalClient

    def rt(self, kind: str) -> Any:
        return self.client.kind(kind)

    async def create(self, kind: str, obj: Obj, namespace: str | None = "default") -> Obj:
        rt = self.rt(kind)
        return await self.client.create(rt, namespace if rt.namespaced else None, obj)

    def get(self, kind: str, name: str, namespace: str | None = "default") -> Obj | None:
        rt = self.rt(kind)
        kv = self.store.get(rt.key(namespace if rt.namespaced else None, name))
        return self.core.get(rt, namespace if rt.namespaced else None, name) if kv else None

    def list(self, kind: str, namespace: str | None = None) -> list[Obj]:
        return self.core.list(self.rt(kind), namespace).items


async def make_api(*namespaces: str) -> Api:
    store = Store.open_memory()
    core = ApiCore(store, admission=(DefaultTolerationSeconds(),))  # as every cluster runs it
    client = LocalClient(core)
    api = Api(store, core, client)
    for ns in ("default", *namespaces):
        await api.create("Namespace", {"metadata": {"name": ns}}, None)
    return api


def pod(name: str, *, labels: dict[str, str] | None = None, node: str | None = None, ip: str | None = None,
        ready: bool = False, ports: list[Obj] | None = None, owner: Obj | None = None, **spec: Any) -> Obj:
    obj: Obj = {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "containers": [{"name": "c", "image": "busybox", **({"ports": ports} if ports else {})}],
            **spec,
        },
    }
    if node:
        obj["spec"]["nodeName"] = node
    if owner:
        obj["metadata"]["ownerReferences"] = [owner]
    return obj


async def set_pod_status(api: Api, name: str, *, ip: str | None = None, ready: bool = False,
                         phase: str = "Running", namespace: str = "default") -> Obj:
    cur = api.get("Pod", name, namespace)
    assert cur is not None
    cur["status"] = {**cur.get("status", {}), "phase": phase,
                     "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        cur["status"]["podIP"] = ip
        cur["status"]["podIPs"] = [{"ip": ip}]
    return await api.client.update_status(api.rt("Pod"), cur)


def owner_ref(obj: Obj, *, controller: bool = True, block: bool = True) -> Obj:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": controller, "blockOwnerDeletion": block}


async def wait_for(api: Api, pred: Any, *, limit: float = 10_000.0) -> float:
    """Wait (in virtual time) until `pred()` holds, re-checking whenever every task is blocked after
    a store change; returns the trio time at which it first held (exact under autojump_clock, since
    time only advances once all tasks are blocked)."""
    with trio.fail_after(limit):
        while True:
            async with api.store.watch("", start_revision=api.store.revision + 1) as changes:
                await trio.testing.wait_all_tasks_blocked()
                if pred():
                    return trio.current_time()
                await changes.__anext__()
